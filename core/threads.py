"""How many CPU threads torch uses: one default and one option for every command-line tool and the app.

torch's own default is one intra-op thread per core. On a machine shared with other work that
collapses: its threads wait on each other while the other processes hold the cores. On 2 cores
with two busy processes beside it, 2 threads were 1.5-1.6x slower than 1 (benchmarks/
cli_threads.py; a 17x slowdown was reported at load 8-11), while on a quiet machine 2 threads were
at most 1.27x faster. Half the cores keeps most of a quiet machine's speed and stays safe on a busy one.
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
