"""core.shards: each item on its own worker thread with one intra-op thread, results in order, errors raised."""
from __future__ import annotations

import gc
import threading

import pytest
import torch

from core.shards import CoreShards


def test_each_item_runs_on_its_own_thread_with_one_intra_op_thread_and_the_callers_count_is_kept():
    torch.set_num_threads(2)
    try:
        shards = CoreShards(3)
        assert torch.get_num_threads() == 2
        out = shards.map(lambda i: (i * 10, threading.get_ident(), torch.get_num_threads()), [0, 1, 2])
        assert [o[0] for o in out] == [0, 10, 20]
        idents = {o[1] for o in out}
        assert len(idents) == 3 and threading.get_ident() not in idents
        assert all(o[2] == 1 for o in out)
        assert torch.get_num_threads() == 2
        # a thread started afterwards begins with the caller's count, not the workers' one
        seen = []
        th = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        th.start()
        th.join()
        assert seen == [2]
        assert shards.map(lambda i: i + 1, [5]) == [6]  # fewer items than shards
        shards.close()
    finally:
        torch.set_num_threads(1)


def test_items_run_at_the_same_time():
    shards = CoreShards(2)
    met = threading.Barrier(2, timeout=30)  # each item waits for the other: only passes if both run at once
    assert shards.map(lambda i: met.wait() is not None and i, [0, 1]) == [0, 1]
    shards.close()


def test_the_first_error_by_index_is_raised_after_every_shard_finished_and_the_shards_go_on():
    shards = CoreShards(3)
    finished = []

    def work(i):
        if i > 0:
            raise ValueError(f"bad {i}")
        met.wait()  # shard 0 finishes only after both failing shards have raised
        finished.append(i)
        return i

    met = threading.Barrier(1)
    with pytest.raises(ValueError, match="bad 1"):
        shards.map(work, [0, 1, 2])
    assert finished == [0]
    assert shards.map(lambda i: -i, [1, 2]) == [-1, -2]
    shards.close()


def test_bad_use_is_refused_with_what_is_allowed():
    with pytest.raises(ValueError, match="shards must be at least 1, got 0"):
        CoreShards(0)
    shards = CoreShards(2)
    with pytest.raises(ValueError, match="3 items for 2 shards: at most one item per shard"):
        shards.map(lambda i: i, [0, 1, 2])
    shards.close()
    shards.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        shards.map(lambda i: i, [0])


def test_dropping_the_shards_stops_their_threads():
    shards = CoreShards(2)
    threads = list(shards._threads)
    assert all(th.is_alive() for th in threads)
    del shards
    gc.collect()
    for th in threads:
        th.join(timeout=30)
        assert not th.is_alive()


def test_results_left_by_an_interrupted_call_are_not_taken_for_the_next_ones():
    """A map the caller left (Ctrl-C while it waited) still gets its shards' results later: never the next map's."""
    shards = CoreShards(2)
    shards._call += 1  # a call was made ...
    shards._done.put((shards._call, 0, True, "left over"))  # ... and its result came after it was left
    assert shards.map(lambda i: i * 2, [0, 1]) == [0, 2]
    shards.close()
