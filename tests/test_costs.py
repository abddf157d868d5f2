"""Costs: measured times remembered per device, estimates, the limit and the faster choice."""
from __future__ import annotations

import json

import pytest
import torch

from core.config import ModelConfig
from explorer import costs
from explorer.costs import (CallCosts, Estimate, SpeedBook, TooLong, advice, check_limit, record_training,
                            sampling_estimate, say_seconds, time_left, train_estimate)


class CountingNet(torch.nn.Module):
    """A network that counts its calls and the batch sizes it saw."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))
        self.batches: list[int] = []
        self.ts: list[int] = []

    def forward(self, x, t):
        self.batches.append(x.shape[0])
        self.ts.append(int(t.reshape(-1)[0]))
        return x * self.w.sum()


def test_say_seconds():
    assert [say_seconds(s) for s in (0.42, 12.4, 89, 240)] == ["0.4 s", "12 s", "89 s", "4 min"]


def test_time_left_follows_the_runs_own_pace_once_it_has_timed_enough_steps():
    # 1000 steps estimated at 20 s; 100 done
    assert costs.computing_left(20.0, 1000, 100, 0.0, 0) == pytest.approx(18.0)  # nothing timed: the estimate
    assert costs.computing_left(20.0, 1000, 100, 0.4, 49) == pytest.approx(18.0)  # under 1/20 of the run timed
    # 50 steps timed at 60 ms each (the machine got busy): 900 left take 54 s, not 18 s
    assert costs.computing_left(20.0, 1000, 100, 3.0, 50) == pytest.approx(54.0)
    assert costs.computing_left(20.0, 40, 10, 0.05, 5) == pytest.approx(0.3)  # a short run: 5 steps are enough
    assert costs.computing_left(20.0, 40, 10, 0.04, 4) == pytest.approx(15.0)
    assert costs.computing_left(20.0, 1000, 1000, 3.0, 1000) == 0.0


def test_the_book_remembers_across_instances_and_averages_later_measurements(tmp_path):
    path = tmp_path / "sub" / "speeds.json"
    book = SpeedBook(path)
    assert book.get("cpu: a", "k") is None
    assert book.put("cpu: a", "k", 2.0) == 2.0
    assert book.put("cpu: a", "k", 4.0) == 3.0  # half old, half new
    book.put("cuda: b", "k", 0.5)
    again = SpeedBook(path)  # a new process reads what the last one measured
    assert again.get("cpu: a", "k") == 3.0 and again.get("cuda: b", "k") == 0.5 and again.get("cpu: a", "x") is None
    assert json.loads(path.read_text()) == {"cpu: a": {"k": 3.0}, "cuda: b": {"k": 0.5}}
    with pytest.raises(ValueError, match="positive number of seconds, got -1"):
        book.put("cpu: a", "k", -1)


def test_a_broken_book_file_is_ignored(tmp_path):
    path = tmp_path / "speeds.json"
    path.write_text("{not json")
    book = SpeedBook(path)
    assert book.get("cpu: a", "k") is None
    book.put("cpu: a", "k", 1.0)  # and replaced by a good one
    assert SpeedBook(path).get("cpu: a", "k") == 1.0
    path.write_text(json.dumps({"cpu: a": {"k": "fast", "j": -2, "i": 0.25}, "odd": 3}))
    assert SpeedBook(path).get("cpu: a", "k") is None and SpeedBook(path).get("cpu: a", "i") == 0.25


def test_a_call_is_measured_once_then_remembered_by_the_book(tmp_path, monkeypatch):
    monkeypatch.setattr(costs, "MEASURE_MAX_CALLS", 5)  # a fast model is timed up to this many calls
    book = SpeedBook(tmp_path / "speeds.json")
    net = CountingNet()
    first = CallCosts(repeats=3, book=book).seconds_per_call("m", net, (3,), 8, "cpu")
    assert first > 0 and net.batches == [8] * 6  # a warm-up call and five timed ones
    # timed as whole sampler steps (the network and the sampler's own work): DDPM's walk down from T
    assert net.ts == [costs.MEASURE_T - k for k in range(6)]
    assert [k.split(" ")[0] for k in json.loads(book.path.read_text()).popitem()[1]] == ["step"]
    assert CallCosts(book=book).seconds_per_call("m", net, (3,), 8, "cpu") == first  # a new process: no call
    assert net.batches == [8] * 6
    monkeypatch.setattr(costs, "MEASURE_S", 0.0)  # a slow model: only the `repeats` calls
    CallCosts(repeats=2, book=book).seconds_per_call("m", net, (3,), 2, "cpu")  # another n is measured anew
    assert net.batches[6:] == [2, 2, 2]


def test_device_keys_name_the_hardware():
    key = costs.device_key("cpu", threads=1)
    assert key.startswith("cpu: ") and "1 threads" in key and torch.__version__ in key
    assert costs.device_key("cpu", threads=2) != key


def test_estimate_counts_batches_and_steps():
    est = Estimate(sampler="ddpm", steps=1000, n=64, per_call=0.2, batch=16)
    assert est.calls == 4000 and est.seconds == pytest.approx(800.0)
    assert est.what() == "DDPM 1000 steps x 64 samples"


def test_the_limit_refuses_with_what_would_fit():
    # per call on n samples: 10 ms + 2 ms per sample, as a measured small network would take
    est = Estimate(sampler="ddpm", steps=1000, n=64, per_call=0.138, batch=64, call_time=lambda k: 0.01 + 0.002 * k)
    with pytest.raises(TooLong) as err:
        check_limit(est, limit=120)
    text = str(err.value)
    assert text.startswith("DDPM 1000 steps x 64 samples would take about 2 min here (138 ms per step); "
                           "at most 2 min is allowed: try ")
    assert "DDIM 50 steps x 64 samples (about 7 s)" in text
    assert "DDPM 869 steps x 64 samples (about 2 min)" in text
    assert "DDPM 1000 steps x 32 samples (about 74 s)" in text  # measured at n=32: 10 + 64 ms
    check_limit(est.with_(sampler="ddim", steps=50), limit=120)  # fits: no error


def test_fewer_samples_without_a_model_cost_their_share():
    est = Estimate(sampler="ddim", steps=100, n=64, per_call=0.64, batch=64)
    assert est.with_(n=16).per_call == pytest.approx(0.16) and est.with_(n=16).batch == 16
    big = Estimate(sampler="ddim", steps=10, n=1000, per_call=1.0, batch=250)
    assert big.calls == 40 and big.with_(n=500).calls == 20 and big.with_(n=500).per_call == 1.0


def test_advice_only_for_long_runs():
    short = Estimate(sampler="ddim", steps=50, n=16, per_call=0.1, batch=16)
    assert advice(short) is None  # 5 s
    long = Estimate(sampler="ddpm", steps=1000, n=16, per_call=0.1, batch=16, call_time=lambda k: 0.1 * k / 16)
    assert advice(long) == ("DDPM 1000 steps x 16 samples will take about 2 min here. Faster: DDIM 50 steps x 16 "
                            "samples (about 5 s) or DDPM 100 steps x 16 samples (about 10 s) or DDPM 1000 steps x "
                            "1 sample (about 6 s).")


def test_a_too_slow_model_says_so():
    est = Estimate(sampler="ddim", steps=10, n=1, per_call=200.0, batch=1)
    with pytest.raises(TooLong, match="too slow here for even one step"):
        check_limit(est, limit=120)


def test_sampling_estimate_measures_the_model(tmp_path):
    calls = CallCosts(repeats=1, book=SpeedBook(tmp_path / "s.json"))
    net = CountingNet()
    est = sampling_estimate(net, (3,), sampler="ddim", steps=20, n=600, device="cpu", batch=250, costs=calls)
    assert est.batch == 250 and est.calls == 60 and net.batches[0] == 250 and set(net.batches) == {250}
    assert est.seconds == pytest.approx(60 * est.per_call)
    with pytest.raises(ValueError, match="steps and n must be at least 1, got steps=0, n=4"):
        sampling_estimate(net, (3,), sampler="ddim", steps=0, n=4, device="cpu", costs=calls)


def test_time_left_at_the_pace_so_far():
    assert time_left(10.0, 25, 100) == pytest.approx(30.0)
    assert time_left(0.0, 0, 100) is None and time_left(5.0, 100, 100) == 0.0


def test_training_estimate_from_earlier_runs(tmp_path):
    book = SpeedBook(tmp_path / "s.json")
    model = ModelConfig("mlp", {"width": 32, "blocks": 1})
    assert train_estimate(model, 64, 1000, 100, "cpu: x", book=book) is None  # nothing ran here yet
    record_training(model, 64, "cpu: x", 0.01, 0.2, book=book)
    assert train_estimate(model, 64, 1000, 100, "cpu: x", book=book) == pytest.approx(1000 * 0.01 + 10 * 0.2)
    assert train_estimate(model, 64, 1000, 0, "cpu: x", book=book) == pytest.approx(10.0)
    assert train_estimate(model, 128, 1000, 0, "cpu: x", book=book) is None  # another batch: not measured
    assert train_estimate(model, 64, 1000, 0, "cpu: y", book=book) is None  # another device
    other = ModelConfig("mlp", {"width": 64, "blocks": 1})
    assert train_estimate(other, 64, 1000, 0, "cpu: x", book=book) is None  # another model
    record_training(other, 64, "cpu: x", 0.03, None, book=book)  # no previews: a preview counts 20/3 steps
    assert train_estimate(other, 64, 300, 100, "cpu: x", book=book) == pytest.approx(300 * 0.03 + 3 * 0.2)


class FixedCosts(CallCosts):
    """A call on k samples takes 10 ms + 5 ms per sample, as if measured."""

    def seconds_per_call(self, key, model, sample_shape, n, device):
        return 0.01 + 0.005 * n


def test_before_sampling_estimates_refuses_and_advises():
    est, tip = costs.before_sampling(None, (3,), sampler="ddim", steps=100, n=4, device="cpu", key="m",
                                     costs=FixedCosts())
    assert tip is None and est.calls == 100 and est.seconds == pytest.approx(3.0)
    est, tip = costs.before_sampling(None, (3,), sampler="ddpm", steps=1000, n=4, device="cpu", key="m",
                                     costs=FixedCosts())
    assert est.seconds == pytest.approx(30.0)
    assert tip == ("DDPM 1000 steps x 4 samples will take about 30 s here. Faster: DDIM 50 steps x 4 samples "
                   "(about 2 s) or DDPM 333 steps x 4 samples (about 10 s).")  # n=1 would still take 15 s: not offered
    with pytest.raises(TooLong, match=r"^DDPM 1000 steps x 4 samples would take about 30 s here \(30 ms per step\); "
                                      r"at most 20 s is allowed: try DDIM 50 steps"):
        costs.before_sampling(None, (3,), sampler="ddpm", steps=1000, n=4, device="cpu", limit=20, key="m",
                              costs=FixedCosts())
