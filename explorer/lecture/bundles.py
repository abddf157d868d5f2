"""Lesson bundles: the current view as one zip (settings, checkpoint, recorded run, pictures), and back.

A bundle holds exactly these members, and an import accepts no others:

    bundle.json                    {"format": FORMAT, "version": VERSION, "app", "created", "settings",
                                    "frames": [caption per PNG], "checkpoint": {"name", "weights_sha256"}}
    checkpoint/config.json         the checkpoint's run config and meta, byte for byte     (Reverse views)
    checkpoint/model.safetensors   the weights it samples with (no optimiser or training state)
    checkpoint/trajectory.npz      the recorded run of exactly the view's setting, when there is one (both
                                   samplers' when it compares two); installed beside the checkpoint as
                                   trajectory-<key>.npz, named by that setting (recordings.file_name)
    data/points.csv                the 2-D points a points_file checkpoint was trained on (its SHA-256 is
                                   in the config); installed into <runs>/points/ on import
    frames/0000.png ...            the view's pictures, for looking at outside the app (at most MAX_FRAMES)

The images an upload-trained checkpoint learned from are not carried (they can be far larger than
a bundle should be, and are someone's photos): export says so, and on another machine Evaluate and
the quiz say that the checkpoint's images are not there.

`settings` are the view's query parameters as strings (the names `url_state.PARAMS` uses), so a
link, a lesson stop and a bundle restore through the same settings-to-view function.

An imported bundle is untrusted. Nothing in it is executed or unpickled: JSON is parsed, weights are
safetensors (a pickle is refused by its first bytes) loaded by core.checkpoint, the recording is
read by `recordings.load` with allow_pickle=False. No member's path reaches the file system: the
names are an exact allow-list and files are written to fixed names in a fresh hidden folder that is
renamed into place only once the checkpoint loads. Sizes are capped by counting bytes while
inflating (headers are not trusted), as are the member count and each member's compression ratio.
Every refusal is one BundleError whose message says what was wrong and what is allowed.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qsl

import numpy as np
from PIL import Image

from core.checkpoint import load_config
from core.data import POINTS_FOLDER, checkpoint_data, points_name
from core.datafiles import MAX_POINTS_BYTES, DataFileError, read_points_csv

from .. import recordings
from . import url_state

FORMAT = "diffusion-explorer-bundle"
VERSION = 1
APP = "Diffusion Explorer"
MAX_FRAMES = 60                     # pictures in a bundle (a Reverse run's frames are picked evenly)

BUNDLE_JSON = "bundle.json"
CONFIG = "checkpoint/config.json"
WEIGHTS = "checkpoint/model.safetensors"
TRAJECTORY = "checkpoint/trajectory.npz"
POINTS = "data/points.csv"
FRAME_NAME = re.compile(r"frames/(\d{4})\.png")
# What each member may inflate to; counted while inflating. Frames are never extracted on import.
MEMBER_CAPS = {BUNDLE_JSON: 64 * 1024, CONFIG: 1024**2, WEIGHTS: 256 * 1024**2, TRAJECTORY: 192 * 1024**2,
               POINTS: MAX_POINTS_BYTES}
MAX_MEMBERS = len(MEMBER_CAPS) + MAX_FRAMES
MAX_ARCHIVE_BYTES = 512 * 1024**2   # the zip file itself
MAX_TOTAL_BYTES = 512 * 1024**2     # everything extracted from one bundle
MAX_RATIO = 100                     # inflated / compressed size of a member, past RATIO_FLOOR bytes
RATIO_FLOOR = 1024**2
MAX_RECORDING_BYTES = recordings.DEFAULT_BUDGET  # the arrays inside trajectory.npz, inflated
RECORDING_ARRAYS = {"meta", "i", "n", "t", "x_t", "x0", "eps"}
RECORDING_LANES = 2  # samplers side by side in one run: the Reverse tab compares two
_CHUNK = 1 << 20
_BUNDLE_SUFFIX = re.compile(r"-bundle-[0-9a-f]{8}(-\d+)?$")


class BundleError(ValueError):
    """A bundle that cannot be written or opened: the message says what was wrong and what is allowed."""


@dataclass(frozen=True)
class Imported:
    """An opened bundle: its checked settings (checkpoint renamed to the imported folder), problems, folder."""

    values: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    checkpoint: Path | None = None


# ---------------------------------------------------------------------------------------------
# export


def export_bundle(
    query: str | Mapping[str, str],
    out_dir: str | os.PathLike,
    *,
    find_checkpoint: Callable[[str], Path | None] | None = None,
    recorded_run: Callable[[dict, Path], tuple | None] | None = None,
    render_frames: Callable[[dict, tuple | None], Sequence[tuple[str, np.ndarray]]] | None = None,
    left_out: list[str] | None = None,
) -> Path:
    """Write the view `query` names (a query string or its parameters) as a bundle zip in `out_dir`.

    find_checkpoint(name): the checkpoint folder the view's `checkpoint` names (None: not found).
    recorded_run(values, folder): (Trajectory, spec) of the complete recorded run of exactly that
    setting, or None. render_frames(values, run): the view's pictures as (caption, (H, W, 3) uint8),
    at most MAX_FRAMES. A Reverse view carries its checkpoint, the recorded run when there is one
    (then the import replays it without computing) and that run's frames; a Forward view carries its
    settings and the pictures x_0, x_t and eps the Forward tab shows for them (it is deterministic
    from the settings, so nothing else is needed). Settings that do not read are left out. A
    points_file checkpoint's points go in too; what cannot go in is said in `left_out` (appended).
    Written atomically: a hidden temporary file beside the target, renamed when complete.
    """
    params = _params(query)
    values, _ = url_state.read(params)
    settings = {k: str(params[k]) for k in values}
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "app": APP,
                           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "settings": settings, "frames": []}
    folder: Path | None = None
    run = None
    if values.get("tab") == "reverse" and "checkpoint" in values:
        folder = find_checkpoint(values["checkpoint"]) if find_checkpoint else None
        if folder is None or not (Path(folder) / "model.safetensors").is_file():
            raise BundleError(f"the view's checkpoint {values['checkpoint']!r} is not a checkpoint folder here; "
                              "choose a listed checkpoint, then export")
        folder = Path(folder)
        settings["checkpoint"] = folder.name
        doc["checkpoint"] = {"name": folder.name, "weights_sha256": recordings.weights_digest(folder)}
        run = recorded_run(values, folder) if recorded_run else None
    points = _points_of(folder, left_out if left_out is not None else []) if folder is not None else None
    if points is not None:
        doc["data"] = {"name": "points_file", "sha256": points[1]}
    frames = list(render_frames(values, run)) if render_frames else []
    if len(frames) > MAX_FRAMES:
        raise ValueError(f"at most {MAX_FRAMES} frames go in a bundle, got {len(frames)}")
    doc["frames"] = [str(caption) for caption, _ in frames]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "-".join(filter(None, ["bundle", values.get("tab", "view"), _safe_name(settings.get("checkpoint", "")),
                                  datetime.now().strftime("%Y%m%d-%H%M%S")])) + ".zip"
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", suffix=".zip.part", dir=out_dir)
    os.close(fd)
    work = Path(tempfile.mkdtemp(prefix=".bundle-work-", dir=out_dir))
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            _write(zf, BUNDLE_JSON, json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8"))
            if folder is not None:
                _write(zf, CONFIG, (folder / "config.json").read_bytes())
                _write_file(zf, WEIGHTS, folder / "model.safetensors")
                if points is not None:
                    _write_file(zf, POINTS, points[0])
                if run is not None:
                    traj, spec = run
                    _write_file(zf, TRAJECTORY, recordings.save(traj, spec, work / "trajectory.npz"),
                                zipfile.ZIP_STORED)  # already compressed
            for k, (_, rgb) in enumerate(frames):
                buf = io.BytesIO()
                Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, "PNG")
                _write(zf, f"frames/{k:04d}.png", buf.getvalue(), zipfile.ZIP_STORED)
        os.replace(tmp, out_dir / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir / name


def _points_of(folder: Path, left_out: list[str]) -> tuple[Path, str] | None:
    """(file, SHA-256) of the 2-D points a checkpoint was trained on, when it names and has them."""
    config, _ = load_config(folder)
    if config.data.name == "image_folder":
        left_out.append("the images this checkpoint was trained on (a bundle carries the checkpoint and its run; "
                        "Evaluate and the quiz need the images, so they work only where the images are)")
    if config.data.name != "points_file":
        return None
    try:
        path = Path(checkpoint_data(config.data).params["path"])
        digest = _sha256_file(path)
    except (DataFileError, OSError, KeyError) as e:
        left_out.append(f"the 2-D points this checkpoint was trained on ({e}); Reverse plays without its grey "
                        "reference where they are missing")
        return None
    if digest != str(config.data.params.get("sha256", digest)).lower() or path.stat().st_size > MAX_POINTS_BYTES:
        left_out.append("the 2-D points this checkpoint was trained on (the file there holds other points than "
                        "its config records)")
        return None
    return path, digest


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _params(query: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(query, Mapping):
        return {str(k): str(v) for k, v in query.items()}
    return dict(parse_qsl(str(query or "").lstrip("?"), keep_blank_values=True))


def _info(name: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=datetime.now().timetuple()[:6])
    info.external_attr = (stat.S_IFREG | 0o644) << 16  # a plain file (no link, no folder)
    info.compress_type = compress
    return info


def _write(zf: zipfile.ZipFile, name: str, data: bytes, compress: int = zipfile.ZIP_DEFLATED) -> None:
    zf.writestr(_info(name, compress), data)


def _write_file(zf: zipfile.ZipFile, name: str, path: Path, compress: int = zipfile.ZIP_DEFLATED) -> None:
    with open(path, "rb") as src, zf.open(_info(name, compress), "w") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)


def _safe_name(name: str) -> str:
    """A folder or file name made of letters, digits, '.', '_' and '-' only (at most 60 characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60].strip("-.")


# ---------------------------------------------------------------------------------------------
# import


def import_bundle(path: str | os.PathLike, dest_root: str | os.PathLike) -> Imported:
    """Check and open the bundle at `path`; its checkpoint goes to `dest_root/<name>-bundle-<sha8>`.

    Returns the bundle's settings (read like a link's; `checkpoint` renamed to the imported folder),
    a message for each setting or part that cannot be used, and the checkpoint folder (None when the
    bundle carries none). The same bundle imported twice reuses its folder; a different folder of
    that name is never overwritten. Raises BundleError for anything not written by `export_bundle`.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise BundleError(f"{path.name}: no such file") from None
    if size > MAX_ARCHIVE_BYTES:
        raise BundleError(f"{path.name} is {size / 1024**2:.0f} MB; a bundle may be at most "
                          f"{MAX_ARCHIVE_BYTES // 1024**2} MB")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise BundleError(f"{path.name} is not a zip file; a lesson bundle is the .zip that Export bundle "
                          "writes") from None
    with zf:
        members = _check_members(zf)
        budget = [MAX_TOTAL_BYTES]
        doc = _read_doc(zf, members, budget)
        values, problems = url_state.read(doc["settings"])
        has_ckpt = CONFIG in members or WEIGHTS in members
        if has_ckpt and not (CONFIG in members and WEIGHTS in members):
            raise BundleError(f"the bundle carries only one of {CONFIG} and {WEIGHTS}; a checkpoint needs both")
        if TRAJECTORY in members and not has_ckpt:
            raise BundleError(f"the bundle carries {TRAJECTORY} without the checkpoint it was recorded from")
        if POINTS in members and not has_ckpt:
            raise BundleError(f"the bundle carries {POINTS} without the checkpoint that was trained on them")
        if not has_ckpt:
            return Imported(values, problems, None)
        about = doc.get("checkpoint")
        expected = about.get("weights_sha256") if isinstance(about, dict) else None
        if not isinstance(expected, str):
            raise BundleError(f"{BUNDLE_JSON} lacks checkpoint.weights_sha256, which a bundle with a checkpoint "
                              "records")
        dest_root = Path(dest_root)
        dest_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".bundle-import-", dir=dest_root))  # hidden: never listed
        try:
            _extract(zf, members[CONFIG], tmp / "config.json", budget)
            digest = _extract(zf, members[WEIGHTS], tmp / "model.safetensors", budget)
            if digest != expected.lower():
                raise BundleError(f"{WEIGHTS} does not match the SHA-256 that {BUNDLE_JSON} records for it: "
                                  "the bundle was changed or damaged after it was written")
            _check_checkpoint(tmp)
            if POINTS in members:
                _install_points(zf, members[POINTS], tmp, dest_root, budget)
            recording = None
            if TRAJECTORY in members:
                recording = _take_recording(zf, members[TRAJECTORY], tmp, digest, budget, problems)
            base = _BUNDLE_SUFFIX.sub("", _safe_name(str(doc["settings"].get("checkpoint", "")))) or "checkpoint"
            folder = _place(tmp, dest_root, f"{base}-bundle-{digest[:8]}", digest, recording)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if values.get("tab") is None:
        values["tab"] = "reverse"
    values["checkpoint"] = folder.name
    return Imported(values, problems, folder)


def _check_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Every member by name, after the rules on names, kinds, count and compression."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"the bundle holds {len(infos)} entries; at most {MAX_MEMBERS} are allowed "
                          f"({', '.join(MEMBER_CAPS)} and up to {MAX_FRAMES} frames/NNNN.png)")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        shown = repr(name[:80])
        if "\\" in name or "\0" in name:
            raise BundleError(f"entry {shown} has a backslash or NUL in its name; names use '/' only")
        if name.startswith("/") or re.match(r"[A-Za-z]:", name):
            raise BundleError(f"entry {shown} is an absolute path; every entry must lie inside the bundle")
        if ".." in name.split("/"):
            raise BundleError(f"entry {shown} climbs out of its folder with '..'; that is never allowed")
        frame = FRAME_NAME.fullmatch(name)
        if name not in MEMBER_CAPS and not (frame and int(frame.group(1)) < MAX_FRAMES):
            raise BundleError(f"entry {shown} is not part of a bundle; allowed: {', '.join(MEMBER_CAPS)} and "
                              f"frames/0000.png to frames/{MAX_FRAMES - 1:04d}.png")
        if name in members:
            raise BundleError(f"entry {shown} appears twice; each entry may appear once")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir() or kind not in (0, stat.S_IFREG):
            raise BundleError(f"entry {shown} is a link or a folder, not a plain file; only plain files are allowed")
        if info.flag_bits & 0x1:
            raise BundleError(f"entry {shown} is encrypted; bundles are not")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"entry {shown} uses compression method {info.compress_type}; "
                              "allowed: stored or deflated")
        members[name] = info
    if BUNDLE_JSON not in members:
        raise BundleError(f"the zip has no {BUNDLE_JSON}; a lesson bundle is the .zip that Export bundle writes")
    return members


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out, budget: list[int]) -> None:
    """Copy one member to the writable `out`, counting the bytes as they inflate against every cap."""
    cap = min(MEMBER_CAPS[info.filename], budget[0])
    written = 0
    try:
        with zf.open(info) as src:
            while block := src.read(_CHUNK):
                written += len(block)
                if written > MEMBER_CAPS[info.filename]:
                    raise BundleError(f"{info.filename} inflates past {_size(MEMBER_CAPS[info.filename])}, "
                                      "the most this entry may hold")
                if written > cap:
                    raise BundleError(f"the bundle inflates past {_size(MAX_TOTAL_BYTES)} in all, the most allowed")
                if written > RATIO_FLOOR and written > MAX_RATIO * max(info.compress_size, 1):
                    raise BundleError(f"{info.filename} inflates more than {MAX_RATIO}-fold: it looks like a zip "
                                      "bomb, which is refused")
                out.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as e:
        if isinstance(e, BundleError):
            raise
        raise BundleError(f"{info.filename} cannot be read from the zip ({e}); the bundle is damaged") from None
    budget[0] -= written


def _size(n: int) -> str:
    return f"{n // 1024**2} MB" if n >= 1024**2 else f"{n // 1024} KiB"


def _read_doc(zf: zipfile.ZipFile, members: dict, budget: list[int]) -> dict:
    buf = io.BytesIO()
    _inflate(zf, members[BUNDLE_JSON], buf, budget)
    try:
        doc = json.loads(buf.getvalue().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BundleError(f"{BUNDLE_JSON} is not valid JSON ({str(e)[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise BundleError(f"{BUNDLE_JSON} has format {found!r}; a bundle has format {FORMAT!r}")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        raise BundleError(f"{BUNDLE_JSON} has version {version!r}; this app opens version {VERSION}")
    settings = doc.get("settings")
    if not isinstance(settings, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in settings.items()):
        raise BundleError(f"{BUNDLE_JSON}: 'settings' must be an object of text values, as in a link "
                          "(e.g. {\"tab\": \"reverse\", \"steps\": \"50\"})")
    return doc


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst: Path, budget: list[int]) -> str:
    """Write one member to the fixed path `dst`; returns its SHA-256."""
    h = hashlib.sha256()

    class Hashing:
        def __init__(self, f):
            self.f = f

        def write(self, block):
            h.update(block)
            self.f.write(block)

    with open(dst, "xb") as f:
        _inflate(zf, info, Hashing(f), budget)
    return h.hexdigest()


def _safetensors_numel(path: Path) -> int:
    """Elements in a safetensors file, from its header alone; BundleError when it is not one."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        header = f.read(n) if 0 < n <= min(size - 8, 100 * 1024**2) else b""
    try:
        meta = json.loads(header.decode("utf-8")) if header else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        meta = None
    if not isinstance(meta, dict):
        pickled = head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or head[:4] == b"PK\x03\x04"
        why = (" (it is a Python pickle, which can run code when loaded)" if pickled else "")
        raise BundleError(f"{WEIGHTS} is not a safetensors file{why}; only safetensors weights are accepted")
    total = 0
    for key, entry in meta.items():
        if key == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
            raise BundleError(f"{WEIGHTS}: tensor {key[:60]!r} has no valid shape in the file's header")
        total += math.prod(shape)
    return total


def _check_checkpoint(folder: Path) -> None:
    """Load the extracted checkpoint as the app would; BundleError says why it cannot be used."""
    import torch

    from core import checkpoint
    from core.nets import build_model

    numel = _safetensors_numel(folder / "model.safetensors")
    try:
        config, meta = checkpoint.load_config(folder)
        shape = meta.get("sample_shape")
        if not isinstance(shape, list) or not all(type(s) is int and 0 < s <= 4096 for s in shape):
            raise BundleError(f"{CONFIG}: meta.sample_shape must be a list of positive sizes, got {shape!r}")
        # a config could describe a far larger net than the weights fill: count it on the meta device
        # (no memory) before building it for real
        with torch.device("meta"):
            needed = sum(v.numel() for v in build_model(config.model, tuple(shape), seed=0).state_dict().values())
        if needed != numel:
            raise BundleError(f"{CONFIG} describes a net of {needed:,} numbers but {WEIGHTS} holds {numel:,}; "
                              "they must belong together")
        checkpoint.load(folder, "cpu")
    except (checkpoint.CheckpointError, ValueError, TypeError, KeyError, RuntimeError) as e:
        if isinstance(e, BundleError):
            raise
        text = str(e).replace(str(folder), "checkpoint")
        raise BundleError(f"the bundle's checkpoint cannot be loaded: {text}") from None


def _install_points(zf: zipfile.ZipFile, info: zipfile.ZipInfo, tmp: Path, dest_root: Path,
                    budget: list[int]) -> Path:
    """Check the bundle's points against the SHA-256 its config records and put them in dest_root/points/."""
    config, _ = load_config(tmp)
    expected = config.data.params.get("sha256") if config.data.name == "points_file" else None
    if not isinstance(expected, str):
        raise BundleError(f"the bundle carries {POINTS} but its checkpoint was not trained on a points file with a "
                          "recorded SHA-256 (config data: points_file with sha256)")
    src = tmp / "points.csv"
    digest = _extract(zf, info, src, budget)
    if digest != expected.lower():
        raise BundleError(f"{POINTS} does not match the SHA-256 the checkpoint's config records for its points: "
                          "the bundle was changed or damaged after it was written")
    try:
        read_points_csv(src)
    except DataFileError as e:
        raise BundleError(f"{POINTS} is not a points file: {str(e).replace(str(src), POINTS)}") from None
    folder = dest_root / POINTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / points_name(digest)
    if not (dst.is_file() and not dst.is_symlink() and _sha256_file(dst) == digest):
        os.replace(src, dst)  # atomic; a file of that name holding other bytes was damaged: these are right
    src.unlink(missing_ok=True)  # never part of the checkpoint folder
    return dst


def _take_recording(zf, info, tmp: Path, digest: str, budget: list[int], problems: list[str]) -> Path | None:
    """Extract trajectory.npz when `recordings.load` accepts it and it belongs to these weights; else a problem."""
    dst = tmp / recordings.FILE
    try:
        _extract(zf, info, dst, budget)
        _check_npz(dst)
        meta, _ = recordings.load(dst)
        if meta.get("weights_sha256") != digest:
            raise ValueError("it was recorded from other weights")
        named = tmp / recordings.file_name(meta["setting"])  # beside the other runs of these weights
    except (BundleError, ValueError, TypeError, KeyError) as e:
        dst.unlink(missing_ok=True)
        text = str(e).replace(str(dst), TRAJECTORY)
        problems.append(f"the bundle's recorded run ({TRAJECTORY}) cannot be used and was left out: {text}; "
                        "Play computes the run instead")
        return None
    os.replace(dst, named)
    return named


def _check_npz(path: Path) -> None:
    """An .npz is a zip too: only the recording's arrays, inflating to at most MAX_RECORDING_BYTES in all."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            names = [i.filename.removesuffix(".npy") for i in infos]
            lanes = [{"meta", *(f"{a}{'' if k == 0 else f'_{k}'}" for a in sorted(RECORDING_ARRAYS - {"meta"})
                                for k in range(n))} for n in range(1, RECORDING_LANES + 1)]
            if len(names) != len(set(names)) or set(names) not in lanes:
                raise ValueError(f"it holds {', '.join(sorted(names)[:16])}; a recording holds "
                                 f"{', '.join(sorted(RECORDING_ARRAYS))}, and for a second sampler beside the "
                                 "first the same arrays (meta excepted) again with the suffix _1")
            left = MAX_RECORDING_BYTES
            for i in infos:
                with z.open(i) as src:
                    while block := src.read(_CHUNK):
                        left -= len(block)
                        if left < 0:
                            raise ValueError(f"its arrays inflate past {_size(MAX_RECORDING_BYTES)}")
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
        raise ValueError(f"not a readable recording ({e})") from None


def _same_checkpoint(folder: Path, digest: str, config: bytes) -> bool:
    try:
        return (folder.is_dir() and not folder.is_symlink() and (folder / "config.json").read_bytes() == config
                and recordings.weights_digest(folder) == digest)
    except OSError:
        return False


def _place(tmp: Path, dest_root: Path, stem: str, digest: str, recording: Path | None) -> Path:
    """Rename the checked `tmp` to dest_root/stem (or reuse the identical folder there; never replace another)."""
    config = (tmp / "config.json").read_bytes()
    for k in range(1, 100):
        target = dest_root / (stem if k == 1 else f"{stem}-{k}")
        for _ in range(2):  # a second look when another import created it between our look and our rename
            if _same_checkpoint(target, digest, config):
                if recording is not None:  # this bundle's run replays at once, beside those of other bundles
                    os.replace(recording, target / recording.name)
                return target
            if os.path.lexists(target):
                break
            try:
                os.rename(tmp, target)  # atomic; fails if something appeared there meanwhile
                return target
            except OSError:
                continue
    raise BundleError(f"no free folder name for the bundle's checkpoint under {dest_root} ({stem}...)")
