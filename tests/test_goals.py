"""The quality goals read stored figures exactly: the verdicts, the mean over sample seeds, the squares."""
import pytest
import torch

from core.data import _checkerboard_toy, _toy_frame
from core.goals import (GROUND_FLAT, OFF_SQUARES, PR_2D, SWD_RATIO_2D, check, check_image_quality, grounds, off_squares,
                        over_seeds)


def _seed(swd, floor, p, r, off=None):
    s = {"swd": swd, "swd_floor": floor, "precision": p, "recall": r}
    return s if off is None else {**s, "off_squares": off}


def test_over_seeds_is_the_mean_swd_against_the_mean_floor_and_the_mean_of_the_rest():
    figs = over_seeds([_seed(0.02, 0.03, 0.96, 0.94, 0.02), _seed(0.06, 0.05, 0.98, 0.97, 0.0)])
    assert figs["seeds"] == 2
    assert figs["metrics"]["swd"]["vs_floor"]["estimate"] == pytest.approx(0.04 / 0.04)
    assert figs["metrics"]["precision"]["value"] == pytest.approx(0.97)
    assert figs["metrics"]["recall"]["value"] == pytest.approx(0.955)
    assert figs["off_squares"] == pytest.approx(0.01)
    assert "off_squares" not in over_seeds([_seed(0.02, 0.03, 0.96, 0.94)])
    with pytest.raises(ValueError, match="at least one seed"):
        over_seeds([])


def test_one_bad_seed_does_not_decide_but_a_model_off_on_average_misses():
    # a ratio of 2.0 on one seed among ratios near 1 (as real data scores against itself) still meets
    lucky = [_seed(0.06, 0.03, 0.96, 0.96)] + [_seed(0.026, 0.03, 0.96, 0.96)] * 3
    v = check("points", "moons", over_seeds(lucky))
    assert v["met"] is True and v["why"][0].startswith("mean of 4 sample seeds: SWD 1.15x")
    off = [_seed(0.045, 0.03, 0.96, 0.96)] * 4
    v = check("points", "moons", over_seeds(off))
    assert v["met"] is False and f"> {SWD_RATIO_2D}" in v["why"][0]


def test_the_edges_of_each_2d_goal():
    at_edge = over_seeds([_seed(SWD_RATIO_2D * 0.03, 0.03, PR_2D, PR_2D, OFF_SQUARES)])
    assert check("points", "checkerboard", at_edge)["met"] is True
    for key in ("precision", "recall"):
        below = over_seeds([_seed(0.03, 0.03, PR_2D - 0.001 if key == "precision" else PR_2D,
                                  PR_2D - 0.001 if key == "recall" else PR_2D)])
        v = check("points", "moons", below)
        assert v["met"] is False and any(w.startswith(key) and "<" in w for w in v["why"])
    v = check("points", "checkerboard", over_seeds([_seed(0.03, 0.03, 0.97, 0.97, 0.011)]))
    assert v["met"] is False and v["why"][-1] == "off the squares 1.1% (> 1%)"
    assert check("signal", "sines", {"metrics": {}}) == {"met": None, "why": ["no numeric goal"]}


def test_off_squares_counts_the_points_between_and_outside_the_squares():
    mean, scale = _toy_frame(_checkerboard_toy)
    board = torch.tensor([[0.5, 0.5], [1.5, 1.5], [2.5, 0.5],   # on filled squares (col + row even)
                          [1.5, 0.5], [0.5, 3.5],               # on empty ones
                          [4.5, 0.5]], dtype=torch.float64)     # off the board
    x = (board - mean) / scale
    assert off_squares(x) == pytest.approx(3 / 6)
    real, _ = _checkerboard_toy(torch.rand(4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert off_squares((real - mean) / scale) == 0.0


def test_grounds_reads_level_grain_and_tint_on_the_frame():
    x = torch.full((4, 3, 8, 8), 0.2)  # in [0, 1]: level 0.2
    x[:, :, 2:6, 2:6] = 0.9  # the shape, inside the frame: not read
    x[1] = 0.1
    x[2, 0, 0, :] += 0.04  # grain: 8 of the frame's 28 pixels of channel 0 off by 0.04 -> median deviation 0
    x[3, :, 0, :] += 0.04 * torch.tensor([1.0, -1.0] * 4)  # a third of channel 0..2's frame off: still 0
    x[3, 0] += 0.1  # tint: channel 0 of image 3 is 0.1 brighter
    g = grounds(x * 2 - 1)
    levels = torch.tensor([0.2, 0.1, 0.2, 0.2 + 0.1 / 3], dtype=torch.float64)
    assert g["level_median"] == pytest.approx(float(levels.quantile(0.5)))
    assert g["level_p99"] == pytest.approx(float(levels.quantile(0.99)))
    assert g["level_min"] == pytest.approx(0.1) and g["level_max"] == pytest.approx(0.2 + 0.1 / 3)
    assert g["grain_median"] == pytest.approx(0) and g["tinted"] == 0.25
    noisy = torch.full((4, 3, 8, 8), 0.2)  # the frame's 28 pixels: 10 at the level, 9 above and 9 below by 0.02
    noisy[:, :, 0, :] += 0.02
    noisy[:, :, -1, :] -= 0.02
    noisy[:, :, 1, 0] += 0.02
    noisy[:, :, 2, 0] -= 0.02
    assert grounds(noisy * 2 - 1)["grain_p90"] == pytest.approx(0.02, abs=1e-6)


def test_image_quality_needs_fid_kid_precision_and_plain_dark_grounds():
    real = {"level_min": 0.0, "level_max": 0.25, "grain_p90": 0.0, "tinted": 0.0}
    good = {"metrics": {"fid": {"value": 0.04, "floor": 0.024}, "kid": {"value": -0.03, "floor": -0.058},
                        "precision": {"value": 0.93}},
            "grounds": {"level_median": 0.13, "level_p99": 0.24, "grain_p90": 0.5 / 255, "tinted": 0.0},
            "grounds_real": real}
    assert check_image_quality(good)["met"]
    for path, value in ((("metrics", "fid", "value"), 0.05), (("metrics", "kid", "value"), 0.001),
                        (("metrics", "precision", "value"), 0.89), (("grounds", "level_p99"), 0.26),
                        (("grounds", "grain_p90"), GROUND_FLAT * 1.5), (("grounds", "tinted"), 0.01)):
        bad = {k: ({kk: dict(vv) for kk, vv in v.items()} if k == "metrics" else dict(v)) for k, v in good.items()}
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        verdict = check_image_quality(bad)
        assert not verdict["met"], path
