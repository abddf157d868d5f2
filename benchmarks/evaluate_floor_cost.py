"""The Evaluate tab's figure step before and after the floors of several real draws, on the same samples,
old and new run alternately in one process (the machine's load changes under both alike).

    mkdir OLD && git archive 2e8dc0c core | tar -x -C OLD && ln -s "$PWD/assets" OLD/assets
    .venv/bin/python benchmarks/evaluate_floor_cost.py OLD moons 1000    # (digits 500, signals_gru 500)

2e8dc0c is the last commit with one real-vs-real floor draw. Prints seconds per call and the load.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import core.evaluate as new  # noqa: E402
from core import checkpoint  # noqa: E402
from core.extractors import choose_extractor  # noqa: E402


def old_module(tree: str):
    """core.evaluate from another tree, imported beside this one (its own core package)."""
    saved = {k: v for k, v in sys.modules.items() if k == "core" or k.startswith("core.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, tree)
    try:
        mod = importlib.import_module("core.evaluate")
    finally:
        sys.path.pop(0)
        for k in [k for k in sys.modules if k == "core" or k.startswith("core.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return mod


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tree", help="a folder holding the old core/ (see above)")
    p.add_argument("name", help="a shipped checkpoint: moons, digits, signals_gru, ...")
    p.add_argument("n", type=int, help="samples per figure step")
    a = p.parse_args(argv)
    tree, name, n = a.tree, a.name, a.n
    torch.set_num_threads(1)
    old = old_module(tree)
    config, _ = checkpoint.load_config(ROOT / "assets" / "checkpoints" / name)
    for label, mod in (("old", old), ("new", new), ("old", old), ("new", new)):
        load = os.getloadavg()[0]
        t = time.perf_counter()
        sets = mod.real_sets(config, n, 0)
        ext = choose_extractor(config.data.name, "builtin")[0] if sets["kind"] == "image" else None
        gen = sets["pool"][-n:] + 0.01  # stand-in samples: the figures' cost does not depend on them
        mod.evaluate_samples(gen, sets, extractor=ext)
        print(f"{name} n={n} {label}: {time.perf_counter() - t:.1f} s (load {load:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
