"""How many CPU threads torch uses: one default and one option for every command-line tool and the app.

torch's own default is one intra-op thread per core. On a machine shared with other work that
collapses: its threads spin-wait on each other while the other processes hold the cores, and a
small model ran 17x slower with 2 threads than with 1 on a busy 2-core machine (benchmarks/
cli_threads.py). Half the cores keeps most of the speed of a quiet machine and stays safe on a busy one.
"""
from __future__ import annotations

import argparse
import os

import torch


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    """Half the cores, at least one: 1 on a 2-core laptop, 4 on an 8-core one."""
    return max(1, cores() // 2)


def add_threads_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The --threads option, the same in every command-line tool."""
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"CPU threads for torch (default: half the cores, here {default_threads()}; torch's "
                             "own one per core collapses when other work shares the CPU)")


def apply_threads(n: int | None) -> int:
    """Set torch's intra-op threads to n (None: the default); returns the number set.

    Raises ValueError for n < 1, with what is allowed.
    """
    if n is None:
        n = default_threads()
    if n < 1:
        raise ValueError(f"--threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    return n
