"""core.floors: the exact sliced distance to a large reference, the comparison with a floor of several real
draws, and the reading it gives for real data and for a visibly wrong model at the Evaluate tab's n."""
import math

import numpy as np
import pytest
import torch

from core.config import DataConfig, RunConfig
from core.evaluate import Resampled, evaluate_samples, floor_values, overall_verdict, real_sets
from core.floors import FLOOR_DRAWS, SlicedReference, compare, draw_seeds, drawable, fresh_draw
from core.metrics import sliced_wasserstein
from explorer.tabs.evaluate_handlers import DEFAULT_N

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

MOONS = RunConfig(data=DataConfig("moons", {}))


@pytest.mark.parametrize("m, n", [(5003, 1000), (4000, 7), (10, 10), (3, 1)])
def test_sliced_reference_equals_the_exact_sliced_distance(m, n):
    g = torch.Generator().manual_seed(m + n)
    ref, x = torch.randn(m, 2, generator=g), torch.randn(n, 2, generator=g) * 1.3 + 0.2
    s = SlicedReference(ref)
    assert s(x) == pytest.approx(sliced_wasserstein(ref, x), rel=1e-9, abs=1e-12)
    assert s(ref) == pytest.approx(0.0, abs=1e-7)  # a set against itself


def test_sliced_reference_of_a_shift_is_the_shift_over_root_two():
    ref = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # the same points moved by s: every projection moves by s cos(angle); the mean of cos^2 over 180 angles is 1/2
    moved = ref + torch.tensor([0.3, 0.0], dtype=torch.float64)
    assert SlicedReference(ref)(moved) == pytest.approx(0.3 / math.sqrt(2), rel=1e-9)


def test_sliced_reference_refuses_what_is_not_2d_points():
    with pytest.raises(ValueError, match=r"needs \(M >= 2, 2\) points"):
        SlicedReference(torch.zeros(10, 3))
    with pytest.raises(ValueError, match=r"expected \(n >= 1, 2\) points"):
        SlicedReference(torch.randn(10, 2))(torch.zeros(4, 3))


def test_compare_ratio_pairs_every_replicate_with_every_draw():
    c = compare(2.0, [1.9, 2.0, 2.1], [1.0, 2.0], how="ratio", better="lower", level=0.5)
    pairs = np.array([[1.9 / 1.0, 1.9 / 2.0], [2.0, 1.0], [2.1, 2.1 / 2.0]]).ravel()
    lo, hi = np.quantile(pairs, [0.25, 0.75])
    assert c["floor"] == 1.5 and c["floor_sd"] == pytest.approx(math.sqrt(0.5))
    assert c["estimate"] == pytest.approx(2.0 / 1.5)
    assert c["interval"] == pytest.approx([lo, hi]) and c["verdict"] == "worse"  # lo = 1.0125 > 1


@pytest.mark.parametrize("value, better, verdict", [
    (0.95, "higher", "same"), (0.80, "higher", "worse"), (0.99, "higher", "better"),
    (0.80, "lower", "better"), (0.99, "lower", "worse"), (0.80, "closer to floor", "worse")])
def test_compare_difference_reads_which_side_the_interval_lies(value, better, verdict):
    reps = [value - 0.01, value, value + 0.01]
    c = compare(value, reps, [0.94, 0.95, 0.96], how="difference", better=better)
    assert c["estimate"] == pytest.approx(value - 0.95) and c["verdict"] == verdict


def test_compare_without_enough_draws_gives_no_verdict():
    assert compare(1.0, [1.0, 1.1], [0.5], how="ratio", better="lower")["verdict"] is None
    assert compare(1.0, [1.0, 1.1], [0.0, 0.5], how="ratio", better="lower")["verdict"] is None  # no ratio to 0
    with pytest.raises(ValueError, match="how must be 'ratio' or 'difference'"):
        compare(1.0, [1.0, 1.1], [1.0, 1.0], how="log", better="lower")


def test_draws_are_fresh_independent_and_never_the_training_data():
    assert drawable(MOONS) and not drawable(RunConfig(data=DataConfig("digits", {})))
    seeds = draw_seeds(MOONS, seed=0)
    assert len(seeds) == FLOOR_DRAWS + 1 and len(set(seeds)) == len(seeds) and 0 not in seeds  # 0: training
    assert not set(seeds) & set(draw_seeds(MOONS, seed=1))  # another evaluation seed, other real sets
    sets = real_sets(MOONS, 300)
    assert len(sets["draws"]) == FLOOR_DRAWS and sets["independent"] and sets["reference"].size == 200_000
    assert torch.equal(sets["draws"][2], fresh_draw(MOONS, 300, seeds[3]))
    assert not torch.equal(sets["draws"][0], sets["draws"][1])


def test_a_finite_dataset_draws_its_floor_from_rows_disjoint_from_the_real_set():
    sets = real_sets(RunConfig(data=DataConfig("digits", {})), 500)
    pool = sets["pool"].reshape(len(sets["pool"]), -1)
    row = {tuple(r.tolist()): i for i, r in enumerate(pool)}
    rows = lambda x: [row[tuple(r.reshape(-1).tolist())] for r in x]  # noqa: E731
    real_rows = set(rows(sets["real"]))
    one, *resamples = sets["draws"]
    assert isinstance(sets["draws"], Resampled) and not sets["independent"] and len(real_rows) == 500
    assert len(resamples) == FLOOR_DRAWS and len(set(rows(one))) == 500 and not real_rows & set(rows(one))
    for d in resamples:  # bootstrap resamples of that one draw: its rows, some twice
        assert d.shape[0] == 500 and set(rows(d)) <= set(rows(one)) and len(set(rows(d))) < 500


def test_floor_values_recentre_resamples_on_the_plain_draw():
    draws = [torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([4.0]), torch.tensor([9.0])]
    first = lambda d: float(d[0])  # noqa: E731
    assert floor_values(first, draws) == [1.0, 2.0, 4.0, 9.0]  # independent draws: as they are
    # the plain draw's 1.0 plus each resample's offset from the resamples' median (4.0)
    assert floor_values(first, Resampled(draws)) == [-1.0, 1.0, 6.0]
    both = floor_values(lambda d: {"a": first(d), "b": 2 * first(d)}, Resampled(draws))
    assert both == [{"a": -1.0, "b": -2.0}, {"a": 1.0, "b": 2.0}, {"a": 6.0, "b": 12.0}]


def test_a_finite_datasets_floor_spreads_as_a_fresh_real_draw_would():
    """UCI digits has 1,797 examples: the floor's draws once overlapped almost wholly and their spread was
    about zero. The resamples' spread of a mean pixel matches its standard error in a draw of m."""
    sets = real_sets(RunConfig(data=DataConfig("digits", {})), 1000)
    m = sets["draws"][0].shape[0]
    mean_pixel = lambda d: float(d.double().mean())  # noqa: E731
    spread = float(np.std(floor_values(mean_pixel, sets["draws"]), ddof=1))
    per_example = sets["draws"][0].double().reshape(m, -1).mean(1)
    standard_error = float(per_example.std()) / math.sqrt(m)
    assert 0.4 * standard_error < spread < 2.5 * standard_error


@pytest.fixture(scope="module")
def moons_sets():
    return real_sets(MOONS, DEFAULT_N["points"])


def test_an_independent_real_draw_reads_indistinguishable_from_data(moons_sets):
    n = DEFAULT_N["points"]
    figs = evaluate_samples(fresh_draw(MOONS, n, 100), moons_sets)
    assert overall_verdict(figs, "points")["verdict"] == "same"
    for key in ("swd", "mmd", "precision", "recall"):
        assert figs[key]["vs_floor"]["says"] == "indistinguishable from data", key
        assert figs[key]["floor"] == pytest.approx(np.mean(figs[key]["floor_draws"]))
        assert len(figs[key]["floor_draws"]) == FLOOR_DRAWS and figs[key]["floor_sd"] > 0


def test_moons_shifted_by_005_is_not_indistinguishable(moons_sets):
    n = DEFAULT_N["points"]
    figs = evaluate_samples(fresh_draw(MOONS, n, 100) + torch.tensor([0.05, 0.0]), moons_sets)
    reading = overall_verdict(figs, "points")
    assert reading["verdict"] == "worse" and reading["says"].startswith("distinguishable from data")
    assert {"precision", "recall"} <= set(reading["worse"])
