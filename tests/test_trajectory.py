"""explorer.trajectory: lanes on one t clock, compact snapshots, a memory-bounded recording."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.samplers import SAMPLERS, Step
from core.schedules import make_schedule
from explorer.trajectory import (
    EPS_RANGE,
    X_RANGE,
    Clock,
    Lane,
    ReuseLastCall,
    Trajectory,
    dequantise,
    run_all,
    snapshot,
)


class Half(torch.nn.Module):
    """A deterministic stand-in denoiser: eps = x / 2."""

    def forward(self, x, t):
        return 0.5 * x


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("linear", 20)


def lanes_for(schedule, specs, shape=(3, 1, 4, 4), seed=0):
    """Sampler iterators from one x_T, and their timestep lists."""
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(shape, generator=g)
    its, ts = [], []
    for name, steps in specs:
        its.append(SAMPLERS[name](Half(), schedule, shape, steps=steps, generator=torch.Generator().manual_seed(1),
                                  x_T=x_T))
        ts.append(schedule.timesteps(steps).tolist())
    return its, ts, x_T


def test_clock_moves_each_lane_only_at_its_own_timesteps(schedule):
    its, ts, _ = lanes_for(schedule, [("ddpm", 20), ("ddim", 5)])
    clock = Clock(its, ts)
    ticks = list(clock)
    assert len(ticks) == clock.total == 21  # 20 DDPM steps (DDIM's t's are among them) + the final tick
    assert ticks[-1] == ("final", "final")
    ddim_moves = [k for k, tick in enumerate(ticks[:-1]) if tick[1] is not None]
    assert [ticks[k][1].t for k in ddim_moves] == ts[1][:-1]     # 20, 16, 12, 8, 4
    assert [ticks[k][0].t for k in ddim_moves] == ts[1][:-1]     # DDPM is at the same t then
    assert all(tick[0] is not None for tick in ticks[:-1])
    assert clock.tick() is None and clock.finished


def test_clock_total_counts_distinct_timesteps(schedule):
    its, ts, _ = lanes_for(schedule, [("ddim", 3), ("ddim", 4)])  # 20,13,7 and 20,15,10,5
    clock = Clock(its, ts)
    assert clock.total == len({20, 13, 7, 15, 10, 5}) + 1 == len(list(clock))


def test_clock_checks_its_arguments(schedule):
    its, ts, _ = lanes_for(schedule, [("ddim", 3)])
    with pytest.raises(ValueError, match="one timestep list per lane"):
        Clock(its, ts + ts)


def test_trajectory_records_every_tick_and_shares_unmoved_lanes(schedule):
    its, ts, x_T = lanes_for(schedule, [("ddpm", 20), ("ddim", 5)])
    traj = run_all(Clock(its, ts), Trajectory("image", (Lane("ddpm", "DDPM", 20), Lane("ddim", "DDIM", 5, 0.0))))
    assert len(traj) == 21 and traj.complete and traj.stride == 1
    # both lanes start from the same x_T
    np.testing.assert_array_equal(traj.frames[0][0].x_t, traj.frames[0][1].x_t)
    np.testing.assert_array_equal(traj.frames[0][0].x_t, snapshot("image", 0, 20, 20, x_T, x_T, x_T).x_t)
    # DDIM did not move between its timesteps 20 and 16: the same snapshot object is reused
    assert traj.frames[1][1] is traj.frames[0][1]
    assert traj.frames[4][1] is not traj.frames[3][1] and traj.frames[4][1].t == 16
    last = traj.frames[-1]
    assert all(s.done and s.t == 0 for s in last)


def test_final_frame_shows_the_sample_itself(schedule):
    its, ts, _ = lanes_for(schedule, [("ddim", 4)])
    steps = []
    clock = Clock(its, ts)
    traj = Trajectory("points", (Lane("ddim", "DDIM", 4, 0.0),))
    for tick in clock:
        traj.observe(tick)
        if tick[0] != "final":
            steps.append(tick[0])
    final = traj.frames[-1][0]
    expected = steps[-1].x_next.to(torch.float16).float().numpy()
    np.testing.assert_allclose(final.x_t.astype(np.float32), expected)
    assert final.i == final.n == 4


def test_budget_thins_the_recording_and_keeps_the_last_frame(schedule):
    its, ts, _ = lanes_for(schedule, [("ddpm", 20)], shape=(4, 1, 8, 8))
    one = 3 * 4 * 64  # bytes of one uint8 snapshot (x_t, x0, eps)
    traj = run_all(Clock(its, ts), Trajectory("image", (Lane("ddpm", "DDPM", 20),), budget=5 * one))
    assert traj.stride > 1
    assert traj.nbytes <= 5 * one + one
    assert traj.complete and traj.frames[-1][0].done
    t_seq = [f[0].t for f in traj.frames]
    assert t_seq == sorted(t_seq, reverse=True) and t_seq[0] == 20
    # what is kept is evenly spaced: every stride-th tick from the start
    gaps = {a - b for a, b in zip(t_seq[:-2], t_seq[1:-1])}
    assert len(gaps) == 1


def test_image_snapshots_are_uint8_at_display_range():
    x = torch.tensor([[-2.0, -1.0, 0.0, 1.0, 2.0]])
    s = snapshot("image", 0, 1, 5, x, x, 3 * x)
    assert s.x_t.dtype == np.uint8
    np.testing.assert_array_equal(s.x_t, [[0, 0, 128, 255, 255]])   # clipped to [-1, 1]
    back = dequantise(s.x_t, X_RANGE)
    np.testing.assert_allclose(back, np.clip(x.numpy(), -1, 1), atol=1 / 127.5)
    np.testing.assert_allclose(dequantise(s.eps, EPS_RANGE), np.clip(3 * x.numpy(), -3, 3), atol=3 / 127.5)
    p = snapshot("points", 0, 1, 5, x, x, x)
    assert p.x_t.dtype == np.float16 and p.nbytes == 3 * 5 * 2


def test_lane_history_is_recent_bounded_and_in_order(schedule):
    its, ts, _ = lanes_for(schedule, [("ddpm", 20)], shape=(5, 2))
    traj = run_all(Clock(its, ts), Trajectory("points", (Lane("ddpm", "DDPM", 20),)))
    hist = traj.lane_history(0, upto=15, span=6, most=4)
    t_now = traj.frames[15][0].t
    assert len(hist) == 4
    assert hist[-1] is traj.frames[15][0]
    assert all(t_now <= s.t <= t_now + 6 for s in hist)
    assert [s.t for s in hist] == sorted((s.t for s in hist), reverse=True)


def test_trajectory_rejects_bad_kinds_and_ticks():
    with pytest.raises(ValueError, match="kind must be"):
        Trajectory("video", (Lane("ddim", "DDIM", 5),))
    traj = Trajectory("image", (Lane("ddim", "DDIM", 5),))
    with pytest.raises(ValueError, match="one entry per lane"):
        traj.observe((None, None))
    with pytest.raises(ValueError, match="first tick must move every lane"):
        traj.observe((None,))
    with pytest.raises(IndexError):
        Trajectory("image", (Lane("ddim", "DDIM", 5),)).frame(0)


def test_lanes_from_one_x_T_share_their_first_forward_pass(schedule):
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn((3, 2), generator=g)
    model = ReuseLastCall(Half())
    its = [SAMPLERS[name](model, schedule, (3, 2), steps=steps, generator=torch.Generator().manual_seed(1),
                          x_T=x_T) for name, steps in (("ddpm", 20), ("ddim", 5))]
    clock = Clock(its, [schedule.timesteps(20).tolist(), schedule.timesteps(5).tolist()])
    first = clock.tick()
    assert model.calls == 1  # DDIM's first call repeated DDPM's: answered from memory
    np.testing.assert_array_equal(first[0].eps.numpy(), first[1].eps.numpy())
    ticks = [first, *clock]
    moves = sum(isinstance(s, Step) for tick in ticks for s in tick)
    assert model.calls == moves - 1 == 20 + 5 - 1  # later calls differ (x or t) and all run
    # the result is what the sampler gives without the wrapper
    plain = list(SAMPLERS["ddim"](Half(), schedule, (3, 2), steps=5, generator=torch.Generator().manual_seed(1),
                                  x_T=x_T))
    last_ddim = [tick[1] for tick in ticks if isinstance(tick[1], Step)][-1]
    np.testing.assert_array_equal(last_ddim.x_next.numpy(), plain[-1].x_next.numpy())
