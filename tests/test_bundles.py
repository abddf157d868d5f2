"""explorer.lecture.bundles: a view exported as a zip opens as the same view; hostile zips are refused."""
import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.checkpoint import load_config
from core.data import RUNS_ENV, checkpoint_data, load_dataset, points_name
from explorer import recordings
from explorer.context import ASSETS, AppContext, Settings
from explorer.lecture import Restorer, bundle_ui, bundles, url_state
from explorer.tabs import forward_handlers as fh
from explorer.tabs.reverse_handlers import ReverseHandlers

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DIGITS = ASSETS / "checkpoints" / "digits"
# the Reverse tab's default run of the shipped digits model: recorded beside it (trajectory.npz)
REVERSE_VIEW = "tab=reverse&checkpoint=digits&sampler=ddim&steps=50&eta=0&seed=0&n=16&frame=50"
FORWARD_VIEW = "tab=forward&source=photo&input=astronaut&schedule=cosine&T=1000&t=300&seed=3"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return AppContext(Settings(runs_dir=tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def reverse(ctx):
    return ReverseHandlers(ctx, recordings.Recordings())


def forward_restorer(ctx) -> Restorer:
    photos = ctx.images
    from explorer.inputs import builtin_datasets
    datasets = builtin_datasets()
    return Restorer([], fh.make_restorer(photos, datasets, fh.make_input_selector(photos)))


def export(h: ReverseHandlers, query: str, out: Path, restorers=()) -> Path:
    """What Export bundle does, with the app's own hooks."""
    return bundles.export_bundle(query, out,
                                 find_checkpoint=lambda name: bundle_ui.find_checkpoint(h, name),
                                 recorded_run=lambda v, folder: bundle_ui.recorded_run(h, v, folder),
                                 render_frames=lambda v, run: bundle_ui.render_frames(h, list(restorers), v, run))


@pytest.fixture(scope="module")
def reverse_zip(reverse, tmp_path_factory) -> Path:
    return export(reverse, REVERSE_VIEW, tmp_path_factory.mktemp("out"))


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_zip(path: Path, entries, symlinks=()) -> Path:
    """A zip of (name, bytes) pairs as given (duplicates and odd names included); `symlinks` are links."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = ((stat.S_IFLNK | 0o777) if name in symlinks else (stat.S_IFREG | 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, which one test writes
                z.writestr(info, data)
    return path


def altered(bundle: Path, tmp_path: Path, changes: dict | None = None, doc=None, extra=(), drop=()) -> Path:
    """A copy of `bundle` with some members replaced, dropped or added, or bundle.json changed."""
    m = members(bundle)
    if doc is not None:
        m["bundle.json"] = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    m.update(changes or {})
    entries = [(k, v) for k, v in m.items() if k not in drop] + list(extra)
    return write_zip(tmp_path / "altered.zip", entries)


def doc_of(bundle: Path) -> dict:
    return json.loads(members(bundle)["bundle.json"])


# --- round trips --------------------------------------------------------------------------------

def test_a_reverse_view_round_trips_with_its_checkpoint_run_and_frames(reverse, reverse_zip, ctx, tmp_path):
    m = members(reverse_zip)
    frames = [f"frames/{k:04d}.png" for k in range(51)]  # the 51 frames of a 50-step run (under the cap of 60)
    assert sorted(m) == sorted(["bundle.json", "checkpoint/config.json", "checkpoint/model.safetensors",
                                "checkpoint/trajectory.npz", *frames])
    doc = json.loads(m["bundle.json"])
    sha = recordings.weights_digest(DIGITS)
    assert (doc["format"], doc["version"], doc["app"]) == ("diffusion-explorer-bundle", 1, "Diffusion Explorer")
    assert doc["settings"] == {"tab": "reverse", "checkpoint": "digits", "sampler": "ddim", "steps": "50", "eta": "0",
                               "seed": "0", "n": "16", "frame": "50"}
    assert doc["checkpoint"] == {"name": "digits", "weights_sha256": sha}
    assert doc["frames"][0] == "frame 1 of 51: step 1 of 50, t = 1000"
    assert doc["frames"][-1] == "frame 51 of 51: the sample x0"
    assert m["checkpoint/model.safetensors"] == (DIGITS / "model.safetensors").read_bytes()
    assert m["checkpoint/config.json"] == (DIGITS / "config.json").read_bytes()

    runs = Path(ctx.settings.runs_dir)
    got = bundles.import_bundle(reverse_zip, runs)
    assert got.problems == []
    assert got.checkpoint == runs / f"digits-bundle-{sha[:8]}"
    assert got.values == {**url_state.read(doc["settings"])[0], "checkpoint": f"digits-bundle-{sha[:8]}"}
    meta, _ = recordings.load(DIGITS / "trajectory.npz")  # named by its setting beside the weights
    assert sorted(os.listdir(got.checkpoint)) == ["config.json", "model.safetensors",
                                                  recordings.file_name(meta["setting"])]
    assert (got.checkpoint / "model.safetensors").read_bytes() == (DIGITS / "model.safetensors").read_bytes()

    # a Reverse tab that never saw this run restores the view by replaying the imported recording
    ctx.samplable_checkpoints(fresh=True)
    fresh = ReverseHandlers(ctx, recordings.Recordings(shipped=True))
    problems = []
    out = fresh.restore(got.values, problems)
    session = out[-1]
    assert problems == [] and session.recorded and session.spec.checkpoint == str(got.checkpoint)
    assert session.cursor == 50 and "Frame 50 of 50" in out[-3]
    _, shipped = recordings.load(DIGITS / "trajectory.npz")
    assert len(session.traj) == len(shipped) == 51
    for k in (0, 17, 50):
        assert np.array_equal(session.traj.frame(k)[0].x_t, shipped.frame(k)[0].x_t)
        png = np.asarray(Image.open(io.BytesIO(m[f"frames/{k:04d}.png"])).convert("RGB"))
        assert np.array_equal(fresh.raster(session, k), png)  # the same pictures as the bundle's frames

    # the same bundle again: the same folder, nothing new beside it
    before = sorted(os.listdir(runs))
    assert bundles.import_bundle(reverse_zip, runs).checkpoint == got.checkpoint
    assert sorted(os.listdir(runs)) == before


SWISS = ASSETS / "checkpoints" / "swiss_roll"
# lesson stop 7: DDIM 50 beside DDPM 1000 on the same noise, and stop 6: digits by DDPM 1000 (both recorded
# beside their checkpoints by explorer.record_defaults)
COMPARE_VIEW = ("tab=reverse&checkpoint=swiss_roll&sampler=ddim&steps=50&eta=0&seed=0&compare=1&sampler_b=ddpm"
                "&steps_b=1000")
DDPM_VIEW = "tab=reverse&checkpoint=digits&sampler=ddpm&steps=1000&seed=0"


def test_two_samplers_side_by_side_travel_as_one_recording_and_replay_after_the_import(reverse, ctx, tmp_path):
    bundle = export(reverse, COMPARE_VIEW, tmp_path / "out")
    m = members(bundle)
    assert "checkpoint/trajectory.npz" in m  # it was computed live on import before
    meta, shipped = recordings.load(next(SWISS.glob("trajectory-*.npz")))
    assert len(shipped.lanes) == 2
    a, b = (lane.label for lane in shipped.lanes)
    frames = json.loads(m["bundle.json"])["frames"]
    assert frames[0] == f"frame 1 of 1001: {a}: step 1 of 50, t = 1000; {b}: step 1 of 1000, t = 1000"
    assert frames[-1] == f"frame 1001 of 1001: {a}: the sample x0; {b}: the sample x0"

    got = bundles.import_bundle(bundle, Path(ctx.settings.runs_dir))
    assert got.problems == []
    assert sorted(os.listdir(got.checkpoint)) == ["config.json", "model.safetensors",
                                                  recordings.file_name(meta["setting"])]
    ctx.samplable_checkpoints(fresh=True)
    fresh = ReverseHandlers(ctx, recordings.Recordings(shipped=True))
    problems = []
    session = fresh.restore(got.values, problems)[-1]
    assert problems == [] and session.recorded and len(session.traj.lanes) == 2
    for k in (0, 500, 1000):
        for lane in (0, 1):
            assert np.array_equal(session.traj.frame(k)[lane].x_t, shipped.frame(k)[lane].x_t)


def test_bundles_of_one_model_at_two_settings_leave_both_runs_beside_it(reverse, reverse_zip, tmp_path):
    dest = tmp_path / "d"
    first = bundles.import_bundle(reverse_zip, dest)
    second = bundles.import_bundle(export(reverse, DDPM_VIEW, tmp_path / "out"), dest)
    assert second.checkpoint == first.checkpoint and second.problems == []
    settings = [recordings.load(DIGITS / name)[0]["setting"]
                for name in ("trajectory.npz", recordings.lesson_file(reverse.link_spec(
                    reverse.link_setting(url_state.read(bundles._params(DDPM_VIEW))[0], []))[0]).name)]
    assert sorted(os.listdir(first.checkpoint)) == sorted(["config.json", "model.safetensors",
                                                           *map(recordings.file_name, settings)])
    for s in settings:  # each the run it was, still readable
        assert recordings.load(first.checkpoint / recordings.file_name(s))[0]["setting"] == s


def test_a_forward_view_round_trips_with_its_three_pictures(ctx, reverse, tmp_path):
    path = export(reverse, FORWARD_VIEW, tmp_path, [forward_restorer(ctx)])
    m = members(path)
    assert sorted(m) == ["bundle.json", "frames/0000.png", "frames/0001.png", "frames/0002.png"]
    doc = json.loads(m["bundle.json"])
    assert doc["settings"] == dict(p.split("=") for p in FORWARD_VIEW.split("&"))
    assert doc["frames"] == ["x₀: astronaut", "x_t", "noise ε (seed 3)"] and "checkpoint" not in doc
    # x_t is the picture the Forward tab shows for these settings, pixel for pixel
    inp = fh.from_image_file(ctx.images["astronaut"], "astronaut")
    s, t, eps = fh._setup(inp, "cosine", 1000, 300, 3)
    x_t = fh.show_data(inp, fh.q_sample(s, inp.x0, t, eps))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(m["frames/0001.png"]))), x_t)

    dest = tmp_path / "dest"
    got = bundles.import_bundle(path, dest)
    assert got == bundles.Imported({"tab": "forward", "source": "photo", "input": "astronaut", "schedule": "cosine",
                                    "T": 1000, "t": 300, "seed": 3}, [], None)
    assert not dest.exists() or list(dest.iterdir()) == []  # nothing to extract for a Forward view


def test_bad_settings_in_a_bundle_become_problems_like_a_links(reverse_zip, tmp_path):
    doc = doc_of(reverse_zip)
    doc["settings"] = {"tab": "forward", "t": "late", "colour": "red"}
    got = bundles.import_bundle(altered(reverse_zip, tmp_path, doc=doc, drop=[
        "checkpoint/config.json", "checkpoint/model.safetensors", "checkpoint/trajectory.npz"]), tmp_path / "d")
    assert got.values == {"tab": "forward"} and got.checkpoint is None
    assert got.problems == [f"the link's t='late' is not allowed (a whole number from 0 to {url_state.MAX_T}); "
                            "the default is used",
                            "the link's setting 'colour' is not one this app knows; ignored"]


def test_a_view_of_an_unknown_checkpoint_cannot_be_exported(reverse, tmp_path):
    with pytest.raises(bundles.BundleError, match="the view's checkpoint 'nope' is not a checkpoint folder here"):
        export(reverse, "tab=reverse&checkpoint=nope", tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- refusals -------------------------------------------------------------------------------------

def refused(path: Path, dest: Path, match: str):
    with pytest.raises(bundles.BundleError, match=match):
        bundles.import_bundle(path, dest)
    assert not dest.exists() or list(dest.iterdir()) == []  # nothing half-written left behind


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "b.zip").write_bytes(b"hello, not a zip")
    refused(tmp_path / "b.zip", tmp_path / "d", "b.zip is not a zip file; a lesson bundle is the .zip")


@pytest.mark.parametrize("name, match", [
    ("../x", r"entry '\.\./x' climbs out of its folder with '\.\.'"),
    ("frames/../../x.png", r"climbs out of its folder"),
    ("/etc/passwd", r"entry '/etc/passwd' is an absolute path"),
    ("C:/x", r"is an absolute path"),
    ("frames\\0000.png", r"has a backslash or NUL in its name"),
    ("notes.txt", r"entry 'notes.txt' is not part of a bundle; allowed: bundle.json, checkpoint/config.json"),
    ("frames/0060.png", r"not part of a bundle; .* frames/0000.png to frames/0059.png"),
    ("checkpoint/", r"not part of a bundle"),
])
def test_names_outside_the_allow_list_are_refused(reverse_zip, tmp_path, name, match):
    refused(altered(reverse_zip, tmp_path, extra=[(name, b"x")]), tmp_path / "d", match)


def test_a_symlink_member_is_refused(reverse_zip, tmp_path):
    m = members(reverse_zip)
    path = write_zip(tmp_path / "l.zip", [("bundle.json", m["bundle.json"]), ("frames/0000.png", b"/etc/passwd")],
                     symlinks={"frames/0000.png"})
    refused(path, tmp_path / "d", r"entry 'frames/0000.png' is a link or a folder, not a plain file")


def test_a_duplicate_member_is_refused(reverse_zip, tmp_path):
    m = members(reverse_zip)
    path = write_zip(tmp_path / "dup.zip", [("bundle.json", m["bundle.json"]), ("bundle.json", m["bundle.json"])])
    refused(path, tmp_path / "d", r"entry 'bundle.json' appears twice")


def test_too_many_members_are_refused(reverse_zip, tmp_path):
    entries = [("bundle.json", members(reverse_zip)["bundle.json"])]
    assert bundles.MAX_MEMBERS == 65  # bundle.json, config, weights, recording, points + 60 frames
    entries += [(f"frames/{k:04d}.png", b"x") for k in range(65)]  # 66 entries, one over the cap
    refused(write_zip(tmp_path / "many.zip", entries), tmp_path / "d", r"holds 66 entries; at most 65 are allowed")


def test_a_member_that_inflates_past_its_cap_is_refused_while_inflating(reverse_zip, tmp_path, monkeypatch):
    # no header is consulted: the count of inflated bytes stops the copy at the cap
    monkeypatch.setitem(bundles.MEMBER_CAPS, bundles.WEIGHTS, 100 * 1024)
    refused(reverse_zip, tmp_path / "d", r"checkpoint/model.safetensors inflates past 100 KiB, the most this entry")


def test_a_member_that_inflates_a_hundredfold_is_refused_as_a_bomb(reverse_zip, tmp_path, monkeypatch):
    monkeypatch.setattr(bundles, "RATIO_FLOOR", 1024)
    doc = json.dumps({"format": bundles.FORMAT, "version": 1, "settings": {}}) + " " * 60_000  # deflates ~400-fold
    refused(altered(reverse_zip, tmp_path, doc=doc.encode()), tmp_path / "d",
            r"bundle.json inflates more than 100-fold: it looks like a zip bomb")


@pytest.mark.parametrize("doc, match", [
    (b"{not json", r"bundle.json is not valid JSON"),
    (b"\xff\xfe", r"bundle.json is not valid JSON"),
    (b"[1, 2]", r"bundle.json has format None; a bundle has format 'diffusion-explorer-bundle'"),
    ({"format": "something-else", "version": 1, "settings": {}}, r"has format 'something-else'"),
    ({"format": "diffusion-explorer-bundle", "version": 2, "settings": {}},
     r"bundle.json has version 2; this app opens version 1"),
    ({"format": "diffusion-explorer-bundle", "version": True, "settings": {}}, r"has version True"),
    ({"format": "diffusion-explorer-bundle", "version": 1, "settings": {"steps": 50}},
     r"'settings' must be an object of text values"),
])
def test_a_bad_bundle_json_is_refused(reverse_zip, tmp_path, doc, match):
    refused(altered(reverse_zip, tmp_path, doc=doc), tmp_path / "d", match)


def test_a_zip_without_bundle_json_is_refused(reverse_zip, tmp_path):
    refused(altered(reverse_zip, tmp_path, drop=["bundle.json"]), tmp_path / "d", r"the zip has no bundle.json")


def test_changed_weights_are_refused(reverse_zip, tmp_path):
    weights = bytearray(members(reverse_zip)["checkpoint/model.safetensors"])
    weights[-1] ^= 0xFF
    refused(altered(reverse_zip, tmp_path, {"checkpoint/model.safetensors": bytes(weights)}), tmp_path / "d",
            r"checkpoint/model.safetensors does not match the SHA-256 that bundle.json records")


class _Marker:
    """Unpickling this would create a file: the test checks that nothing ever unpickles it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_weights_named_like_safetensors_are_refused_and_never_unpickled(reverse_zip, tmp_path):
    import hashlib

    marker = tmp_path / "unpickled"
    evil = pickle.dumps({"weight": _Marker(str(marker))}, protocol=4)
    doc = doc_of(reverse_zip)
    doc["checkpoint"]["weights_sha256"] = hashlib.sha256(evil).hexdigest()  # a consistent tampering
    path = altered(reverse_zip, tmp_path, {"checkpoint/model.safetensors": evil}, doc=doc)
    refused(path, tmp_path / "d", r"checkpoint/model.safetensors is not a safetensors file \(it is a Python pickle")
    assert not marker.exists()


def test_a_config_that_does_not_fit_the_weights_is_refused(reverse_zip, tmp_path):
    config = json.loads(members(reverse_zip)["checkpoint/config.json"])
    config["config"]["model"]["params"]["base"] = 64  # a bigger net than the weights fill
    path = altered(reverse_zip, tmp_path, {"checkpoint/config.json": json.dumps(config).encode()})
    refused(path, tmp_path / "d", r"checkpoint/config.json describes a net of [\d,]+ numbers but "
                                  r"checkpoint/model.safetensors holds 1,080,161")


def test_a_tampered_recording_is_dropped_with_a_problem(reverse_zip, tmp_path):
    buf = io.BytesIO()  # an object array: reading it would unpickle, which allow_pickle=False refuses
    z = np.load(DIGITS / "trajectory.npz")
    arrays = {k: z[k] for k in z.files if k != "meta"}
    np.savez(buf, **arrays, meta=np.array([_Marker(str(tmp_path / "m"))], dtype=object))
    path = altered(reverse_zip, tmp_path, {"checkpoint/trajectory.npz": buf.getvalue()})
    got = bundles.import_bundle(path, tmp_path / "d")
    assert sorted(os.listdir(got.checkpoint)) == ["config.json", "model.safetensors"]
    assert len(got.problems) == 1 and got.problems[0].startswith(
        "the bundle's recorded run (checkpoint/trajectory.npz) cannot be used and was left out: ")
    assert "Play computes the run instead" in got.problems[0] and not (tmp_path / "m").exists()
    # damaged bytes: dropped the same way
    bad = bytearray(members(reverse_zip)["checkpoint/trajectory.npz"])
    bad[len(bad) // 2: len(bad) // 2 + 64] = b"\0" * 64
    got = bundles.import_bundle(altered(reverse_zip, tmp_path, {"checkpoint/trajectory.npz": bytes(bad)}),
                                tmp_path / "d2")
    assert len(got.problems) == 1 and "cannot be used and was left out" in got.problems[0]


def test_a_recording_whose_arrays_are_not_one_or_two_samplers_is_dropped_with_a_problem(reverse_zip, tmp_path):
    z = np.load(DIGITS / "trajectory.npz")
    arrays = {k: z[k] for k in z.files}
    for extra, what in (({"x_t_1": arrays["x_t"]}, "half a second sampler"),
                        ({f"{a}_{k}": arrays[a] for a in ("i", "n", "t", "x_t", "x0", "eps") for k in (1, 2)},
                         "three samplers")):
        buf = io.BytesIO()
        np.savez(buf, **arrays, **extra)
        got = bundles.import_bundle(altered(reverse_zip, tmp_path, {"checkpoint/trajectory.npz": buf.getvalue()}),
                                    tmp_path / what)
        assert sorted(os.listdir(got.checkpoint)) == ["config.json", "model.safetensors"], what
        assert len(got.problems) == 1 and "a recording holds eps, i, meta, n, t, x0, x_t, and for a second " \
            "sampler beside the first the same arrays (meta excepted) again with the suffix _1" in got.problems[0], what


def test_a_different_folder_of_the_same_name_is_never_overwritten(reverse_zip, tmp_path):
    dest = tmp_path / "d"
    sha = recordings.weights_digest(DIGITS)
    mine = dest / f"digits-bundle-{sha[:8]}"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    got = bundles.import_bundle(reverse_zip, dest)
    assert got.checkpoint == dest / f"digits-bundle-{sha[:8]}-2"
    assert os.listdir(mine) == ["notes.txt"] and got.values["checkpoint"] == got.checkpoint.name
    assert sorted(p.name for p in dest.iterdir()) == [mine.name, got.checkpoint.name]  # no temporary folder left


# --- the data a checkpoint was trained on ---------------------------------------------------------

POINTS_TEXT = "x,y\n" + "".join(f"{i},{(i * 7) % 11}\n" for i in range(80))
POINTS_SHA = hashlib.sha256(POINTS_TEXT.encode()).hexdigest()


def trained_on(ctx, name: str, data: dict) -> str:
    """The shipped digits weights under the runs folder as `name`, its config naming `data`."""
    folder = Path(ctx.settings.runs_dir) / name
    if not folder.exists():
        shutil.copytree(DIGITS, folder, ignore=shutil.ignore_patterns("trajectory.npz"))
        doc = json.loads((folder / "config.json").read_text())
        doc["config"]["data"] = data
        (folder / "config.json").write_text(json.dumps(doc))
    return f"tab=reverse&checkpoint={name}&sampler=ddim&steps=5&eta=0&seed=0&n=4"


@pytest.fixture
def drawn_zip(ctx, reverse, tmp_path, monkeypatch):
    runs = Path(ctx.settings.runs_dir)
    monkeypatch.setenv(RUNS_ENV, str(runs))
    (runs / "points").mkdir(exist_ok=True)
    (runs / "points" / points_name(POINTS_SHA)).write_text(POINTS_TEXT)
    view = trained_on(ctx, "drawn", {"name": "points_file", "params": {
        "path": str(runs / "points" / points_name(POINTS_SHA)), "sha256": POINTS_SHA}})
    left_out: list[str] = []
    path = bundles.export_bundle(view, tmp_path / "out", find_checkpoint=lambda n: bundle_ui.find_checkpoint(reverse, n),
                                 left_out=left_out)
    assert left_out == []
    return path


def test_a_drawn_models_bundle_carries_its_points_and_installs_them_elsewhere(drawn_zip, tmp_path, monkeypatch):
    m = members(drawn_zip)
    assert m[bundles.POINTS] == POINTS_TEXT.encode()
    assert doc_of(drawn_zip)["data"] == {"name": "points_file", "sha256": POINTS_SHA}
    other = tmp_path / "other-machine"
    got = bundles.import_bundle(drawn_zip, other)
    installed = other / "points" / points_name(POINTS_SHA)
    assert installed.read_text() == POINTS_TEXT
    assert sorted(p.name for p in got.checkpoint.iterdir()) == ["config.json", "model.safetensors"]
    config, _ = load_config(got.checkpoint)  # it names the first machine's path: the hash finds the copy here
    assert checkpoint_data(config.data, other).params["path"] == str(installed.resolve())
    monkeypatch.setenv(RUNS_ENV, str(other))
    assert len(load_dataset(config.data.name, **config.data.params)) == 80
    assert bundles.import_bundle(drawn_zip, other).checkpoint == got.checkpoint  # again: the same folder and file


def test_points_that_do_not_match_their_hash_or_are_not_points_are_refused(drawn_zip, tmp_path):
    changed = POINTS_TEXT.replace("1,7", "1,8").encode()
    with pytest.raises(bundles.BundleError, match="data/points.csv does not match the SHA-256 the checkpoint's config "
                                                  "records for its points"):
        bundles.import_bundle(altered(drawn_zip, tmp_path, {bundles.POINTS: changed}), tmp_path / "r1")
    assert not (tmp_path / "r1" / "points").exists() or not any((tmp_path / "r1" / "points").iterdir())
    with pytest.raises(bundles.BundleError, match="carries data/points.csv without the checkpoint"):
        bundles.import_bundle(altered(drawn_zip, tmp_path, drop=(bundles.CONFIG, bundles.WEIGHTS)), tmp_path / "r2")


def test_points_in_a_bundle_of_a_model_not_trained_on_them_are_refused(reverse_zip, tmp_path):
    bad = altered(reverse_zip, tmp_path, extra=[(bundles.POINTS, POINTS_TEXT.encode())])
    with pytest.raises(bundles.BundleError, match="carries data/points.csv but its checkpoint was not trained on a "
                                                  "points file"):
        bundles.import_bundle(bad, tmp_path / "r")


def test_an_upload_trained_models_bundle_says_its_images_are_not_included(ctx, reverse, tmp_path):
    view = trained_on(ctx, "uploaded", {"name": "image_folder", "params": {"path": "/gone", "sha256": "e" * 64}})
    left_out: list[str] = []
    path = bundles.export_bundle(view, tmp_path, find_checkpoint=lambda n: bundle_ui.find_checkpoint(reverse, n),
                                 left_out=left_out)
    assert left_out == ["the images this checkpoint was trained on (a bundle carries the checkpoint and its run; "
                        "Evaluate and the quiz need the images, so they work only where the images are)"]
    assert bundles.POINTS not in members(path) and "data" not in doc_of(path)
