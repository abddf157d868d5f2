"""explorer.recordings: complete runs kept (LRU, bounded) and shipped recordings used only when they fit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.samplers import SAMPLERS
from core.schedules import make_schedule
from explorer.recordings import FILE, Recordings, lesson_file, load, save, setting, weights_digest
from explorer.tabs.reverse_session import Spec
from explorer.trajectory import Clock, Lane, Trajectory, run_all

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


class Half(torch.nn.Module):
    def forward(self, x, t):
        return 0.5 * x


def a_run(kind="image", steps=10, seed=0, shape=(2, 1, 4, 4)) -> Trajectory:
    schedule = make_schedule("linear", 40)
    g = torch.Generator().manual_seed(seed)
    it = SAMPLERS["ddim"](Half(), schedule, shape, steps=steps, generator=g, x_T=torch.randn(shape, generator=g))
    lane = Lane("ddim", "DDIM", steps, 0.0)
    return run_all(Clock([it], [schedule.timesteps(steps).tolist()]), Trajectory(kind, (lane,)))


def a_spec(folder: Path, steps=10, seed=0, n=2, kind="image") -> Spec:
    return Spec(str(folder), 1, kind, (Lane("ddim", "DDIM", steps, 0.0),), seed, n)


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "model.safetensors").write_bytes(b"weights v1")
    return tmp_path


def test_a_saved_recording_loads_as_the_same_frames(folder):
    traj = a_run()
    path = save(traj, a_spec(folder), folder / FILE)
    meta, back = load(path)
    assert meta["setting"] == setting(a_spec(folder)) and meta["weights_sha256"] == weights_digest(folder)
    assert back.complete and len(back) == len(traj) == 11 and back.ticks == traj.ticks and back.lanes == traj.lanes
    for a, b in zip(traj.frames, back.frames):
        assert (a[0].i, a[0].n, a[0].t) == (b[0].i, b[0].n, b[0].t)
        for name in ("x_t", "x0", "eps"):
            assert np.array_equal(getattr(a[0], name), getattr(b[0], name))
    assert not list(folder.glob(".recording-*"))  # written through a temporary file, nothing left over
    assert path.stat().st_mode & 0o777 == 0o644


def test_only_a_complete_run_can_be_saved(folder):
    traj = a_run()
    traj.complete = False
    with pytest.raises(ValueError, match="only a complete run"):
        save(traj, a_spec(folder), folder / FILE)


def two_samplers(shape=(2, 1, 4, 4)) -> Trajectory:
    """DDIM 10 beside DDPM 40 from the same x_T, as the Reverse tab compares them."""
    schedule = make_schedule("linear", 40)
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    its = [SAMPLERS["ddim"](Half(), schedule, shape, steps=10, generator=torch.Generator().manual_seed(1), x_T=x_T),
           SAMPLERS["ddpm"](Half(), schedule, shape, steps=40, generator=torch.Generator().manual_seed(1), x_T=x_T)]
    lanes = (Lane("ddim", "DDIM", 10, 0.0), Lane("ddpm", "DDPM", 40, None))
    return run_all(Clock(its, [schedule.timesteps(10).tolist(), schedule.timesteps(40).tolist()]),
                   Trajectory("image", lanes))


def test_a_run_of_two_samplers_side_by_side_is_recorded_beside_the_default_and_found_by_its_setting(folder):
    traj = two_samplers()
    spec = Spec(str(folder), 1, "image", traj.lanes, 0, 2)
    save(a_run(), a_spec(folder), folder / FILE)          # the default run, which must not shadow it
    path = save(traj, spec, lesson_file(spec))
    assert path.parent == folder and path.name.startswith("trajectory-") and path != folder / FILE
    assert lesson_file(spec) != lesson_file(a_spec(folder))  # each setting its own file
    meta, back = load(path)
    assert back.lanes == traj.lanes and len(back) == len(traj) and back.stride == traj.stride
    for a, b in zip(traj.frames, back.frames):
        assert len(a) == len(b) == 2
        for sa, sb in zip(a, b):
            assert (sa.i, sa.n, sa.t) == (sb.i, sb.n, sb.t)
            assert all(np.array_equal(getattr(sa, k), getattr(sb, k)) for k in ("x_t", "x0", "eps"))
    rec = Recordings()
    got = rec.get(spec)
    assert got is not None and got.lanes == traj.lanes and rec.get(a_spec(folder)) is not None
    other = Spec(str(folder), 1, "image", traj.lanes, 1, 2)  # another seed: computed live
    assert Recordings().get(other) is None
    (folder / "model.safetensors").write_bytes(b"weights v2, retrained")
    assert Recordings().get(spec) is None


def test_a_shipped_recording_is_used_only_for_its_setting_and_its_weights(folder):
    save(a_run(), a_spec(folder), folder / FILE)
    rec = Recordings()
    assert rec.get(a_spec(folder)) is not None
    assert rec.get(a_spec(folder, seed=1)) is None and rec.get(a_spec(folder, steps=20)) is None
    assert rec.get(a_spec(folder, n=3)) is None and rec.get(a_spec(folder, kind="signal")) is None
    assert Recordings(shipped=False).get(a_spec(folder)) is None
    (folder / "model.safetensors").write_bytes(b"weights v2, retrained")   # other weights: computed live
    fresh = Recordings()
    assert fresh.get(a_spec(folder)) is None


@pytest.mark.parametrize("bad", [b"not a zip", b"PK\x03\x04broken"])
def test_a_broken_recording_is_ignored(folder, bad):
    (folder / FILE).write_bytes(bad)
    assert Recordings().get(a_spec(folder)) is None
    with pytest.raises(ValueError, match="not a readable recording"):
        load(folder / FILE)


def test_a_recording_with_pickled_objects_is_refused(folder):
    np.savez(folder / FILE, meta=np.array([{"format": 1}], dtype=object), i=np.zeros(1))
    with pytest.raises(ValueError, match="not a readable recording"):
        load(folder / FILE)
    assert Recordings().get(a_spec(folder)) is None


def test_runs_are_kept_least_recently_used_first_out_within_the_budget(folder):
    one = a_run()
    rec = Recordings(budget=int(one.nbytes * 2.5))
    specs = [a_spec(folder, seed=s) for s in range(3)]
    for s in specs[:2]:
        rec.put(s, a_run(seed=s.seed))
    assert rec.get(specs[0]) is not None   # now the most recently used
    rec.put(specs[2], a_run(seed=2))
    assert len(rec) == 2 and rec.nbytes <= rec.budget
    assert rec.get(specs[1]) is None and rec.get(specs[0]) is not None and rec.get(specs[2]) is not None
    unfinished = a_run(seed=9)
    unfinished.complete = False
    rec.put(a_spec(folder, seed=9), unfinished)
    assert rec.get(a_spec(folder, seed=9)) is None   # only complete runs are replayed
