"""Record the Reverse tab's default run of each shipped checkpoint beside it (`trajectory.npz`), and the
runs the shipped lessons' stops play on it (`trajectory-<key>.npz`).

    python -m explorer.record_defaults [NAME ...]      # default: every shipped checkpoint

The default run is what the tab plays before anything is changed: DDIM with its default steps,
eta 0, seed 0, the kind's default number of samples. A lesson stop on the Reverse tab plays the
setting its link names (DDPM's 1000 steps at stop 6, two samplers side by side at stop 7): recorded,
it starts at once and plays at full speed on a slow laptop too. Rerun this after retraining a
checkpoint or changing a lesson's stop: a recording made from other weights or for another setting
is never used (see explorer.recordings).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.threads import add_threads_option, apply_threads

from .context import AppContext, Settings
from .lecture import lessons
from .recordings import FILE, Recordings, lesson_file, save
from .tabs.reverse_handlers import ReverseHandlers
from .tabs.reverse_session import ReverseSession


def record(h: ReverseHandlers, path: str) -> Path:
    """Compute the default run of one checkpoint live and write it beside the checkpoint."""
    spec, loaded = h.default_spec(path)
    return save(run(h, spec, loaded), spec, Path(path) / FILE)


def run(h: ReverseHandlers, spec, loaded):
    session = ReverseSession()
    h._start(session, spec, loaded)
    while h._advance(session):
        pass
    return session.traj


def lesson_specs(h: ReverseHandlers, path: str) -> list:
    """(Spec, loaded) of each run a shipped lesson's stop plays on this checkpoint other than its default
    run, each once, read as the page reads the stop's link."""
    default, _ = h.default_spec(path)
    found = {}
    for file in lessons.available().values():
        for stop in lessons.load_lesson(file).stops:
            if stop.settings.get("tab") != "reverse" or not stop.settings.get("checkpoint"):
                continue
            problems = []
            setting = h.link_setting(stop.settings, problems)
            if setting is None or problems or Path(setting["path"]).resolve() != Path(path).resolve():
                continue
            spec, loaded = h.link_spec(setting)
            if spec != default:
                found.setdefault(spec, loaded)
    return list(found.items())


def record_lessons(h: ReverseHandlers, path: str) -> list[Path]:
    """Compute each lesson run on one checkpoint (`lesson_specs`) live and write it beside the checkpoint."""
    return [save(run(h, spec, loaded), spec, lesson_file(spec)) for spec, loaded in lesson_specs(h, path)]


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
        for out in [record(h, by_name[name]), *record_lessons(h, by_name[name])]:
            print(f"{name}: {out} ({out.stat().st_size / 1024:.0f} KiB, {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
