"""Writing a benchmark's own section of a results file, between its markers, leaving the rest as it is."""
from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(block: str, begin: str, end: str, path: Path = RESULTS) -> Path:
    """Put `block` (which starts with `begin` and ends with `end`) in place of that section, or append it."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    return path
