"""Data parallel over the CPU's cores inside one process: a batch in shards, each on its own thread.

torch's own CPU parallelism splits every operation across its intra-op threads and joins them at
its end. On a quiet machine that works (2 threads train the 1.06 M-parameter UNet 1.6-1.8x faster
than 1 on 2 cores), but on one shared with other work the threads wait on each other at every join
and fall below one thread's speed (benchmarks/cli_threads.py, benchmarks/RESULTS-speed.md). Shards
instead give each thread a whole part of the batch with one intra-op thread: the threads meet once
per step, to add up the gradients (torch releases Python's lock inside its operations, so the
shards' forward and backward passes run at the same time).

`CoreShards(k).map(fn, items)` runs fn(items[i]) on worker i and returns the results in order;
the first exception (by index) is raised in the caller. The workers keep one intra-op thread for
their lifetime; the caller's own thread count is left as it was.
"""
from __future__ import annotations

import queue
import threading
import weakref
from typing import Any, Callable, Sequence

import torch

__all__ = ["CoreShards"]


class CoreShards:
    """k worker threads, each running one shard's work with one torch intra-op thread."""

    def __init__(self, k: int):
        if k < 1:
            raise ValueError(f"shards must be at least 1, got {k}")
        self.k = k
        self._jobs: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(k)]
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._call = 0  # numbers each map call: results of one the caller left (an interrupt) are dropped
        mine = torch.get_num_threads()
        ready = threading.Barrier(k + 1)
        # the workers hold the queues, not this object, so dropping it stops them (the finalizer)
        self._threads = [threading.Thread(target=_work, args=(self._jobs[i], self._done, ready),
                                          name=f"core-shard-{i}", daemon=True) for i in range(k)]
        for th in self._threads:
            th.start()
        ready.wait()
        # torch.set_num_threads in a worker also sets the count that threads started later begin
        # with: put back the caller's, so only the workers run with one
        torch.set_num_threads(mine)
        self._stop = weakref.finalize(self, _stop, self._jobs, self._threads)

    def map(self, fn: Callable[[Any], Any], items: Sequence) -> list:
        """[fn(items[0]), ..., fn(items[n-1])], item i on worker i (n <= k), all at the same time."""
        if self._closed:
            raise RuntimeError("these shards are closed")
        if len(items) > self.k:
            raise ValueError(f"{len(items)} items for {self.k} shards: at most one item per shard")
        self._call += 1
        call = self._call
        for i, item in enumerate(items):
            self._jobs[i].put((call, i, fn, item))
        out: list = [None] * len(items)
        errors: dict[int, BaseException] = {}
        got = 0
        while got < len(items):  # wait for every shard, even after an error: none may still be running on return
            c, i, ok, value = self._done.get()
            if c != call:
                continue  # from a call interrupted before its shards were done
            got += 1
            if ok:
                out[i] = value
            else:
                errors[i] = value
        if errors:
            raise errors[min(errors)]
        return out

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        self._closed = True
        self._stop()


def _work(jobs: queue.SimpleQueue, done: queue.SimpleQueue, ready: threading.Barrier) -> None:
    # torch gives a thread its count lazily, from the process-wide one, at its first parallel work;
    # let that happen first, or the caller's count put back below would override this one
    torch.get_num_threads()
    torch.set_num_threads(1)
    ready.wait()
    while True:
        job = jobs.get()
        if job is None:
            return
        call, i, fn, item = job
        try:
            done.put((call, i, True, fn(item)))
        except BaseException as e:  # noqa: BLE001 - handed to the caller, which raises it
            done.put((call, i, False, e))


def _stop(jobs: list[queue.SimpleQueue], threads: list[threading.Thread]) -> None:
    for q in jobs:
        q.put(None)
    for th in threads:
        if th is not threading.current_thread():
            th.join()
