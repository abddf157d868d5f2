"""The pretrained models in assets/checkpoints: one per built-in dataset, small, documented, and they
load and sample offline into something near their data (far nearer than noise of the same scale)."""
import re
import socket
from pathlib import Path

import gradio as gr
import pytest
import torch

from core import checkpoint
from core.data import list_datasets, load_dataset
from core.metrics import knn_distances
from core.samplers import sample
from core.schedules import make_schedule

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

FOLDER = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"
SHIPPED = checkpoint.list_checkpoints(FOLDER)
NAMES = [e["name"] for e in SHIPPED]
FILE_DATASETS = {"mnist", "fashion_mnist", "cifar10", "image_folder", "points_file"}  # need the user's files


def test_every_built_in_dataset_has_a_shipped_model():
    built_in = set(list_datasets()) - FILE_DATASETS
    assert built_in <= {e["dataset"] for e in SHIPPED}, "a built-in dataset has no shipped checkpoint"
    signals = {e["net"] for e in SHIPPED if e["dataset"] == "signals"}
    assert {"gru", "conv1d"} <= signals  # the seed's RNN and CNN denoisers both


@pytest.mark.parametrize("entry", SHIPPED, ids=NAMES)
def test_shipped_checkpoint_is_small_and_documented(entry):
    path = Path(entry["path"])
    assert (path / "model.safetensors").stat().st_size <= 8 * 2**20  # "at most a few MB"
    assert not entry["resumable"]  # sampling weights only: no optimizer state shipped
    script = (FOLDER / "make_checkpoints.sh").read_text()
    assert re.search(rf"\[{re.escape(entry['name'])}\]=\"--dataset {entry['dataset']} ", script), \
        "the exact command that made it must be in make_checkpoints.sh"
    readme = (FOLDER / "README.md").read_text()
    assert re.search(rf"^\| `{re.escape(entry['name'])}`", readme, re.M), "its figures must be in the README table"
    _, meta = checkpoint.load_config(path)
    assert meta["steps"] > 0 and meta["train_seconds"] > 0 and meta["x0_clip"] > 0


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a shipped checkpoint tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("entry", SHIPPED, ids=NAMES)
def test_shipped_checkpoint_samples_near_its_data_offline(entry, no_network):
    model, config, meta = checkpoint.load(entry["path"])
    model.eval()
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    kind = meta["kind"]
    n, steps = {"points": (256, 50), "signal": (32, 20), "image": (4, 10)}[kind]
    shape = (n, *meta["sample_shape"])
    with torch.no_grad():
        x = sample(model, schedule, shape, sampler="ddim", seed=0, steps=steps,
                   prediction=config.diffusion.prediction, clip=checkpoint.sampling_clip(meta))
    assert x.shape == shape and torch.isfinite(x).all()
    data = load_dataset(config.data.name, **config.data.params).x
    real = data[torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:2000]].flatten(1)
    # Noise with the data's own mean and spread per coordinate: what an untrained model amounts to.
    noise = real.mean(0) + real.std(0) * torch.randn(shape, generator=torch.Generator().manual_seed(1)).flatten(1)
    d_model = knn_distances(x.flatten(1), real)[0].median()
    d_noise = knn_distances(noise, real)[0].median()
    assert d_model < 0.6 * d_noise, f"samples are {d_model:.3g} from the data, noise {d_noise:.3g}"


@pytest.fixture(scope="module")
def live_reverse():
    """Reverse handlers that never read recordings: every run is computed."""
    from explorer.context import AppContext, Settings
    from explorer.recordings import Recordings
    from explorer.tabs.reverse_handlers import ReverseHandlers

    return ReverseHandlers(AppContext(Settings(device="cpu", shipped_checkpoints=FOLDER)), Recordings(shipped=False))


@pytest.mark.parametrize("entry", SHIPPED, ids=NAMES)
def test_shipped_recording_is_the_default_run_computed_here(entry, live_reverse):
    """The recorded default run (what the first Play replays) is what computing it live gives, within rounding."""
    import numpy as np

    from explorer.recordings import FILE, Recordings
    from explorer.tabs.reverse_session import ReverseSession

    spec, loaded = live_reverse.default_spec(entry["path"])
    recorded = Recordings().get(spec)
    assert recorded is not None, f"no usable {FILE} (rerun python -m explorer.record_defaults {entry['name']})"
    assert (Path(entry["path"]) / FILE).stat().st_size <= 3 * 2**20
    session = ReverseSession()
    live_reverse._start(session, spec, loaded)
    assert not session.recorded
    while live_reverse._advance(session):
        pass
    live = session.traj
    assert len(live) == len(recorded) and live.ticks == recorded.ticks
    for a, b in zip(live.frames, recorded.frames):
        assert (a[0].i, a[0].t) == (b[0].i, b[0].t)
        for name in ("x_t", "x0", "eps"):
            diff = np.abs(getattr(a[0], name).astype(np.float32) - getattr(b[0], name).astype(np.float32))
            # Images are uint8 levels, points and signals float16 values, and other CPUs round differently
            # (AVX-512 against AVX2 kernels). A 2-D sampler's flow splits between the arms of a spiral or
            # the modes of a mixture, so a sample that starts near such a split can land on the other
            # side from a rounding difference: on one CPU 14 of spiral's 500 points moved by up to 2.0.
            # So most values, not all, must agree within rounding; another run (seed, sampler, model)
            # moves nearly all of them.
            if spec.kind == "image":
                assert diff.max() <= 4 and diff.mean() <= 1.0, f"{name} at step {a[0].i}: {diff.max()}"
            else:
                off = float((diff > 0.05).mean())
                assert off <= 0.05 and diff.mean() <= 0.1, f"{name} at step {a[0].i}: {off:.1%} of values off"


def test_each_reverse_stop_of_a_shipped_lesson_plays_a_recording_of_its_run(live_reverse):
    """A lesson stop on the Reverse tab (DDPM 1000 at stop 6, two samplers side by side at stop 7) plays a
    run recorded beside its model: it starts at once on a slow laptop. The recording is found for the
    stop's setting as the page reads it, and its frames are the live run's (the first 12 checked)."""
    import numpy as np

    from explorer.record_defaults import lesson_specs
    from explorer.recordings import Recordings, lesson_file
    from explorer.tabs.reverse_session import ReverseSession

    specs = [(e, spec, loaded) for e in SHIPPED for spec, loaded in lesson_specs(live_reverse, e["path"])]
    assert {e["name"] for e, _, _ in specs} >= {"digits", "swiss_roll"} and any(len(s.lanes) == 2 for _, s, _ in specs)
    for entry, spec, loaded in specs:
        recorded = Recordings().get(spec)
        assert recorded is not None, f"no usable {lesson_file(spec).name} beside {entry['name']} (rerun " \
                                     f"python -m explorer.record_defaults {entry['name']})"
        assert lesson_file(spec).stat().st_size <= 6 * 2**20 and recorded.lanes == spec.lanes
        by_step = {tuple((s.i, s.t) for s in frame): frame for frame in recorded.frames}
        session = ReverseSession()
        live_reverse._start(session, spec, loaded)
        while len(session.traj) < 12 and live_reverse._advance(session):
            pass
        matched = 0
        for frame in session.traj.frames:
            other = by_step.get(tuple((s.i, s.t) for s in frame))
            if other is None:  # the recording keeps every other frame of a long run
                continue
            matched += 1
            for a, b in zip(frame, other):
                for name in ("x_t", "x0", "eps"):
                    diff = np.abs(getattr(a, name).astype(np.float32) - getattr(b, name).astype(np.float32))
                    if spec.kind == "image":
                        assert diff.max() <= 4 and diff.mean() <= 1.0, f"{entry['name']} {name} at {a.i}"
                    else:  # rounding on another CPU may move a few points (see the test above)
                        assert float((diff > 0.05).mean()) <= 0.05, f"{entry['name']} {name} at {a.i}"
        assert matched >= 4, f"{entry['name']}: only {matched} of the first frames found in the recording"


def test_the_reverse_tab_opens_on_the_first_frame_of_the_recorded_default_run():
    """A page that names nothing of Reverse shows the default model's recorded x_T at once (no computing)."""
    import numpy as np

    from explorer.context import AppContext, Settings
    from explorer.recordings import Recordings
    from explorer.tabs.reverse_handlers import ReverseHandlers

    from explorer.lecture import OPENING

    h = ReverseHandlers(AppContext(Settings(device="cpu", shipped_checkpoints=FOLDER)), Recordings())
    out = h.opening()
    n = ReverseHandlers.N_RESTORED
    assert len(out) == n and all(o == gr.skip() for o in out[:n - 5])  # the controls stay as built
    image, caption, scrub, session = out[n - 5], out[n - 3], out[n - 2], out[n - 1]
    assert session.recorded and session.clock is None and session.cursor == 0
    assert session.spec == h.default_spec(h.default_checkpoint())[0]
    assert np.array_equal(image["value"], h.picture(session, 0)) and image["visible"] is True
    assert f"Frame 0 of {len(session.traj) - 1}" in caption and "ready: press Play" in caption
    assert scrub["value"] == 0 and scrub["interactive"] is True
    assert h.restore({"tab": "forward", "t": 3, OPENING: True}, [])[n - 1] is not session  # each page its own
    assert all(o == gr.skip() for o in h.restore({"tab": "forward", "t": 3}, []))  # a lesson stop: left alone


def test_the_reverse_tab_opens_empty_when_the_default_run_was_not_recorded():
    from explorer.context import AppContext, Settings
    from explorer.recordings import Recordings
    from explorer.tabs.reverse_handlers import ReverseHandlers

    h = ReverseHandlers(AppContext(Settings(device="cpu", shipped_checkpoints=FOLDER)), Recordings(shipped=False))
    assert all(o == gr.skip() for o in h.opening())
