"""Pacing of live figures: each call its own pause, all callers together at most per_s a second."""
import threading

import pytest

from explorer.pacer import FrameSlots, Pacer


class FakeTime:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def clock(self):
        return self.now

    def sleep(self, s):
        self.slept.append(round(s, 9))


def test_one_caller_waits_its_own_pause_each_time():
    ft = FakeTime()
    p = Pacer(0.2, 5, ft.clock, ft.sleep)
    for k in range(4):
        ft.now = k * 1.0  # far apart: no call waits for another
        assert p.wait() == pytest.approx(0.2)
    assert ft.slept == [0.2] * 4


def test_callers_at_once_take_slots_per_s_apart_and_none_is_dropped():
    ft = FakeTime()
    p = Pacer(0.2, 5, ft.clock, ft.sleep)
    waits = [p.wait() for _ in range(20)]  # a class of 20 asks at the same moment
    assert waits == pytest.approx([0.2 + 0.2 * k for k in range(20)])  # 5 a second in all, the last after 4 s
    ft.now = 10.0  # after a quiet spell the budget is free again: no backlog
    assert p.wait() == pytest.approx(0.2)


def test_threads_get_distinct_slots():
    p = Pacer(0.0, 1000)
    slots = []
    lock = threading.Lock()

    def go():
        w = p.wait()
        with lock:
            slots.append(w)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slots) == 8


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="per_s > 0"):
        Pacer(0.2, 0)


def sent_by_slots(gap_s: float, step_s: float, seconds: float) -> list[float]:
    """When FrameSlots lets frames out of steps `step_s` apart (the first slot taken by the first view)."""
    ft = FakeTime()
    slots = FrameSlots(gap_s, ft.clock)
    slots.take()
    sent = []
    for k in range(1, int(seconds / step_s) + 1):
        ft.now = k * step_s
        if slots.free():
            slots.take()
            sent.append(ft.now)
    return sent


def test_steps_just_faster_than_the_cap_go_out_near_the_cap_not_at_half_of_it():
    # DDIM 50 at the Reverse tab's default speed: a step every 80 ms, 2-D frames capped at 12 a second.
    # A gap measured from the last frame sent would pass every other step: 25 frames in 4 s.
    sent = sent_by_slots(1 / 12, 0.08, 4.0)
    assert 45 <= len(sent) <= 48  # 50 steps, at most one in each of the 48 slots of 4 s
    slots_used = [int(t * 12 + 1e-9) for t in sent]
    assert len(set(slots_used)) == len(slots_used)  # never two frames in one slot


def test_steps_slower_than_the_cap_all_go_out_and_faster_ones_are_capped():
    assert len(sent_by_slots(1 / 12, 0.2, 4.0)) == 20
    fast = sent_by_slots(1 / 12, 0.001, 4.0)
    assert len(fast) == 48 and min(b - a for a, b in zip(fast, fast[1:])) == pytest.approx(1 / 12, abs=0.0011)


def test_frame_slots_refuse_a_gap_that_is_not_positive():
    with pytest.raises(ValueError, match="gap_s must be > 0"):
        FrameSlots(0)


def test_until_free_is_the_time_to_the_start_of_the_next_slot_no_frame_took():
    ft = FakeTime()
    slots = FrameSlots(0.25, ft.clock)
    assert slots.until_free() == 0.0  # no frame yet: any time
    slots.take()                     # a frame at 0: slot 0 taken
    ft.now = 0.1
    assert slots.until_free() == 0.25 - 0.1
    ft.now = 0.3                     # slot 1, free
    assert slots.until_free() == 0.0
    slots.take()
    ft.now = 0.375
    assert slots.until_free() == 0.5 - 0.375
    ft.now = 2.0                     # long after: free now
    assert slots.until_free() == 0.0
