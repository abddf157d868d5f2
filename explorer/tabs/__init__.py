"""One module per tab; each has TITLE and build(ctx). explorer.app lists them in order."""
