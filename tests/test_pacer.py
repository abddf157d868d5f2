"""Pacing of live figures: each call its own pause, all callers together at most per_s a second."""
import threading

import pytest

from explorer.pacer import Pacer


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
