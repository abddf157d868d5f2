"""Every named API endpoint called with wrong types and out-of-range values, as a hostile client would.

Each call either succeeds or is refused with a readable message (never Gradio's bare "Error", never a
Python exception's own text), and a normal call works afterwards. Calls go over raw HTTP (Gradio's
/call API) because gradio_client refuses to send NaN or infinity. Numeric ranges of the Forward and
Reverse controls are explored with hypothesis, against the exact rule each control states.
"""
from __future__ import annotations

import json
import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAN, INF = math.nan, math.inf
WRONG = ["abc", "", ["a"], {"a": 1}, None, NAN, INF, -INF, 10**30, -5, 1.5, True, 123, [[1, 2]]]
PYTHON_TEXT = ("unhashable type", "not supported between", "has no attribute", "cannot convert", "Traceback",
               "NoneType", "invalid literal", "is not subscriptable", "is not iterable", "index out of range",
               "positional argument", "object is not", "Expected a `")
TYPE_WRONG = ["abc", NAN, ["a"], {"a": 1}, None, INF, 10**30, True]  # no control may take these as they are
SEED_MAX = 2**31 - 1


def call(url: str, api: str, data: list, timeout: float = 120) -> tuple[str, object]:
    """("complete", outputs) or ("error", message or None) from one call of /gradio_api/call/<api>."""
    body = json.dumps({"data": data})  # json writes NaN and Infinity; a browser could send them too
    r = httpx.post(f"{url}gradio_api/call/{api}", content=body, headers={"content-type": "application/json"},
                   timeout=timeout)
    r.raise_for_status()
    event, payload = None, None
    with httpx.stream("GET", f"{url}gradio_api/call/{api}/{r.json()['event_id']}", timeout=timeout) as s:
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
                break
    if event == "error":
        return "error", (payload or {}).get("error") if isinstance(payload, dict) else payload
    return event, payload


def readable(message) -> bool:
    return isinstance(message, str) and message.strip() not in ("", "Error") and not any(
        p in message for p in PYTHON_TEXT)


def type_wrong(v) -> bool:
    """No slider, number box, checkbox or choice can hold this value as it is."""
    return v is None or isinstance(v, (bool, str, list, dict)) or (
        isinstance(v, float) and not math.isfinite(v)) or (isinstance(v, int) and abs(v) > 2**53)


def name_of(label: str) -> str:
    """A control's name as messages give it: the label without its parenthesised help."""
    return label.split("  (")[0].split(" (")[0].strip()


@pytest.fixture(scope="module")
def endpoints(app_url):
    info = httpx.get(app_url + "gradio_api/info", timeout=60).json()
    return {name.lstrip("/"): e["parameters"] for name, e in info["named_endpoints"].items()}


def cheap_base(name: str, params: list[dict]) -> list:
    """Each parameter's default, changed where the default would start long work (training, evaluation)."""
    base = {p["parameter_name"]: p.get("parameter_default") for p in params}
    if name == "train_start":
        base["preset"] = "no-such-preset"  # refused by the handler: no training run starts
    if name in ("evaluate", "evaluate_history", "quiz_new"):
        base["path"] = None  # "choose a checkpoint first"
    if name == "reverse_play":
        base.update(steps=2, steps_b=2, speed="max", compare=False)
    if name == "reverse_sample":
        base.update(steps=2)
    return [base[p["parameter_name"]] for p in params]


NORMAL = ("step_encoding", [1000, 250])


def normal_call_works(url: str) -> None:
    status, out = call(url, *NORMAL)
    assert status == "complete", out


def test_every_endpoint_refuses_wrong_values_in_words(app_url, endpoints):
    assert len(endpoints) >= 30
    rng = random.Random(14)
    jobs, k = [], 0
    for name, params in endpoints.items():
        base = cheap_base(name, params)
        if not params:  # the defaults themselves are not under test (and some start real work): only here
            jobs.append((name, None, None, base))
        for i, p in enumerate(params):  # one wrong value per parameter: by turns a wrong type (each kind in
            k += 1                      # turn) or one drawn from all the wrong values (the suite's time)
            wrong = TYPE_WRONG[(k // 2) % len(TYPE_WRONG)] if k % 2 else rng.choice(WRONG)
            jobs.append((name, p, wrong, base[:i] + [wrong] + base[i + 1:]))

    def run(job):
        name, p, wrong, data = job
        return job, call(app_url, name, data)

    strict = {"Slider", "Number", "Checkbox", "CheckboxGroup", "Radio"}
    failures = []
    with ThreadPoolExecutor(4) as pool:
        for (name, p, wrong, data), (status, out) in pool.map(run, jobs):
            if name == "train_start" and status == "complete":  # never leave a training run going
                call(app_url, "train_stop", [])
            where = f"{name}({p['parameter_name'] if p else ''}={wrong!r})"
            if status == "error":
                if not readable(out):
                    failures.append(f"{where}: unreadable message {out!r}")
                elif p is not None and p["component"] in strict and type_wrong(wrong) \
                        and not out.startswith(f"{name_of(p['label'])} must be "):
                    failures.append(f"{where}: message does not name {name_of(p['label'])!r}: {out!r}")
            elif status != "complete":
                failures.append(f"{where}: ended with {status!r}")
            elif p is not None and p["component"] in strict and wrong is not None and not isinstance(
                    wrong, (int, float, bool)):
                failures.append(f"{where}: a {p['component']} accepted a {type(wrong).__name__}")
    assert not failures, "\n".join(failures)
    normal_call_works(app_url)


def test_the_limits_follow_the_schedule_and_booleans_are_booleans(app_url, endpoints):
    status, _ = call(app_url, "noisy", ["linear", 2000, 1500, 0])
    assert status == "complete"  # t past the slider's first maximum (1000) is fine with T=2000
    assert call(app_url, "noisy", ["linear", 1000, 1500, 0]) == (
        "error", "t must be a whole number between 0 and T=1000, got 1500")
    for wrong in ("abc", 123, None):
        status, message = call(app_url, "reverse_play", [None, "ddim", 2, 0.0, 0, 4, wrong, "ddpm", 2, 0.0, "max"])
        assert (status, message) == (
            "error", f"Compare with a second sampler must be true or false, got {wrong!r}".replace(
                "got None", "got nothing"))
    status, message = call(app_url, "reverse_play", [None, "ddim", 2, 0.0, NAN, 4, False, "ddpm", 2, 0.0, "max"])
    assert message == "Seed must be a whole number from 0 to 2,147,483,647, got nan"
    names = [p["parameter_name"] for p in endpoints["train_start"]]
    data = cheap_base("train_start", endpoints["train_start"])
    data[names.index("preset")] = ["a"]
    status, message = call(app_url, "train_start", data)
    assert message == "Model preset must be a name (text), got ['a']"
    normal_call_works(app_url)


def number_or_junk(lo: int, hi: int):
    """Mostly numbers near the range [lo, hi]; sometimes floats, NaN, infinities, huge ints or junk."""
    return st.one_of(st.integers(lo - 20, hi + 20), st.integers(lo, hi).map(float),
                     st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
                     st.sampled_from(["abc", None, [1], True]))


def whole_in(v, lo, hi) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and float(v).is_integer() and lo <= v <= hi)


FUZZ = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(T=number_or_junk(10, 2000), t=number_or_junk(0, 2000), seed=number_or_junk(0, 50))
def test_forward_numbers_follow_their_rules(app_url, T, t, seed):
    status, out = call(app_url, "noisy", ["linear", T, t, seed])
    seed_ok = whole_in(seed, 0, SEED_MAX)
    if not whole_in(T, 10, 2000):
        expected = "Steps T must be a whole number from 10 to 2,000, got "
    elif not whole_in(t, -(2**53), 2**53):
        expected = "Timestep t must be a whole number from 0 to T, got "
    elif not seed_ok:
        expected = "Noise seed must be a whole number from 0 to 2,147,483,647, got "
    elif not 0 <= t <= T:
        expected = f"t must be a whole number between 0 and T={int(T)}, got "
    else:
        assert status == "complete", out
        return
    assert status == "error" and out.startswith(expected), (T, t, seed, out)


@pytest.fixture(scope="module")
def points_checkpoint(endpoints):
    choices = next(p for p in endpoints["reverse_sample"] if p["parameter_name"] == "checkpoint")["type"]["enum"]
    path = next(c for c in choices if c.rstrip("/").endswith("moons"))
    T = json.loads((Path(path) / "config.json").read_text())["config"]["diffusion"]["T"]
    return path, T


@FUZZ
@given(steps=number_or_junk(1, 60), eta=st.one_of(st.floats(-0.5, 1.5), st.floats(allow_nan=True, allow_infinity=True),
                                                  st.sampled_from(["abc", None, True])),
       seed=number_or_junk(0, 50), far=st.booleans())
def test_reverse_numbers_follow_their_rules(app_url, points_checkpoint, steps, eta, seed, far):
    path, T = points_checkpoint
    if far and isinstance(steps, int) and 0 < steps < 60:
        steps = T - 60 + steps  # near the checkpoint's T (a run of ~T steps on 8 points stays cheap)
    status, out = call(app_url, "reverse_sample", [path, "ddim", steps, eta, seed, 8])
    eta_ok = isinstance(eta, (int, float)) and not isinstance(eta, bool) and math.isfinite(eta) and 0 <= eta <= 1
    # steps' range is the checkpoint's, checked by the run; the control only asks for a whole number
    if not whole_in(steps, -(2**53), 2**53):
        expected = "Steps must be a whole number from 1 to the checkpoint's T, got "
    elif not eta_ok:
        expected = "eta must be a number from 0 to 1, got "
    elif not whole_in(seed, 0, SEED_MAX):
        expected = "Seed must be a whole number from 0 to 2,147,483,647, got "
    elif not 1 <= steps <= T:
        expected = f"steps (sampler) must be a whole number between 1 and {T}, got "
    else:
        assert status == "complete", out
        return
    assert status == "error" and out.startswith(expected), (steps, eta, seed, out)


def test_a_call_written_before_an_endpoint_gained_an_input_gets_its_default(app_url, points_checkpoint):
    path, _ = points_checkpoint
    status, out = call(app_url, "reverse_sample", [path, "ddim", 5, 0.0, 0, 8])  # before "Timestep spacing"
    assert status == "complete" and out[-1]["spacing"] == "linear", out
    status, out = call(app_url, "reverse_sample", [path, "ddim", 5, 0.0, 0, 8, "quadratic"])
    assert status == "complete" and out[-1]["spacing"] == "quadratic", out
    assert call(app_url, "reverse_sample", [path, "ddim", 5, 0.0, 0, 8, "cubic"]) == (
        "error", "Timestep spacing must be one of 'linear', 'quadratic', got 'cubic'")
