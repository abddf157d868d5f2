"""Record the Reverse tab's default run of each shipped checkpoint beside it (`trajectory.npz`).

    python -m explorer.record_defaults [NAME ...]      # default: every shipped checkpoint

The default run is what the tab plays before anything is changed: DDIM with its default steps,
eta 0, seed 0, the kind's default number of samples. Rerun this after retraining a checkpoint: a
recording made from other weights is never used (see explorer.recordings).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.threads import add_threads_option, apply_threads

from .context import AppContext, Settings
from .recordings import FILE, Recordings, save
from .tabs.reverse_handlers import ReverseHandlers
from .tabs.reverse_session import ReverseSession


def record(h: ReverseHandlers, path: str) -> Path:
    """Compute the default run of one checkpoint live and write it beside the checkpoint."""
    spec, loaded = h.default_spec(path)
    session = ReverseSession()
    h._start(session, spec, loaded)
    while h._advance(session):
        pass
    return save(session.traj, spec, Path(path) / FILE)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m explorer.record_defaults", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="shipped checkpoint names (default: all)")
    add_threads_option(p)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    ctx = AppContext(Settings(device="cpu"))
    h = ReverseHandlers(ctx, Recordings(shipped=False))
    home = Path(ctx.settings.shipped_checkpoints).resolve()
    shipped = [e for e in h.checkpoints(fresh=True) if Path(e["path"]).resolve().parent == home]
    by_name = {e["name"]: e["path"] for e in shipped}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        print(f"unknown checkpoint(s) {', '.join(unknown)}; shipped: {', '.join(sorted(by_name))}", file=sys.stderr)
        return 2
    for name in args.names or sorted(by_name):
        start = time.perf_counter()
        out = record(h, by_name[name])
        print(f"{name}: {out} ({out.stat().st_size / 1024:.0f} KiB, {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
