"""Checkpoints: a directory of safetensors weights and JSON, written atomically, never unpickled.

Layout of a checkpoint directory:

    model.safetensors        the weights to sample with (the EMA copy when training kept one)
    config.json              {"format": FORMAT, "config": RunConfig.to_dict(), "meta": {...}}
    train_state.safetensors  optional: every tensor needed to resume training (raw weights,
    train_state.json         optimizer moments, RNG states...) and, in the JSON, everything else

A pickle (`torch.save`'s .pt/.pth/.ckpt/.bin) can run arbitrary code when loaded, so this module
refuses them outright. Writes go to a hidden temporary directory beside the target that is renamed
into place only when complete, so a reader never sees a half-written checkpoint. Those hidden
folders carry the writer's process id (`.NAME.tmp-PID-xxxx`, `.NAME.old-PID-xxxx`): after a crash
(kill -9 at any moment) `recover` / `sweep` remove the ones whose writer is dead and put back a
checkpoint caught between its two renames. Files that live inside a checkpoint without being part
of it (a training log) are carried from the old directory to the new one by hard links, so they
are whole in one of the two places at every moment.
"""
from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import safetensors
import safetensors.torch
import torch
from torch import nn

from . import __version__
from .config import RunConfig
from .nets import build_model, count_parameters

FORMAT = "diffusion-explorer/1"
SUPPORTED_FORMATS = (FORMAT,)
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default container (a zip of pickles)
_PICKLE_MAGIC = b"\x80"     # pickle opcode PROTO, followed by the protocol number 2..5


class CheckpointError(ValueError):
    """A checkpoint could not be written or read: the message says what is wrong and where."""


# ---------------------------------------------------------------------------------------------
# save


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module under DistributedDataParallel / DataParallel (.module) or torch.compile (._orig_mod)."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save(
    path: str | os.PathLike,
    model: nn.Module,
    config: RunConfig,
    meta: dict | None = None,
    train_state: dict | None = None,
    *,
    dtype: torch.dtype | None = None,
    carry: Iterable[str] = (),
    check_space: Callable[[int], None] | None = None,
    keep_previous_as: str | os.PathLike | None = None,
) -> Path:
    """Write a checkpoint directory at `path`, atomically replacing any checkpoint already there.

    model: the weights to sample with (pass the EMA copy if there is one); it must know its
    `sample_shape` (every net in core.nets does) unless meta["sample_shape"] gives it.
    meta: extra JSON-able facts (steps, metrics, ...); they override the recorded defaults.
    train_state: optional nested dict of tensors and plain values to resume training, e.g.
    {"model": raw_state_dict, "optimizer": opt.state_dict(), "ema": ..., "step": 1200}.
    dtype: store floating weights in this dtype (e.g. torch.float16 halves the file); loading
    casts them back to the model's dtype.
    carry: names of files or folders inside the checkpoint now at `path` that are not part of it
    (e.g. a training log): they move into the new one (hard links where the file system allows,
    else copies), and `path` may be a directory holding only these.
    check_space: called with the bytes about to be written, before anything is; raise to refuse.
    keep_previous_as: keep the checkpoint being replaced under this name (without the carried
    files) instead of deleting it. Returns the checkpoint path.
    """
    path = Path(path)
    carry = tuple(carry)
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype such as torch.float16, got {dtype}")
    _check_replaceable(path, carry)
    model = unwrap(model)
    full_meta = _meta(model, config, meta or {}, train_state, dtype)
    doc = {"format": FORMAT, "config": config.to_dict(), "meta": full_meta}
    config_text = _dumps(doc, "config/meta")

    weights = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        weights[name] = tensor.contiguous().clone()
    state_tensors, state_text = (None, None)
    if train_state is not None:
        state_tensors, tree = flatten_state(train_state)
        state_text = _dumps({"format": FORMAT, "state": tree}, "train_state")
    if check_space is not None:
        check_space(_bytes_to_write(weights, state_tensors, config_text, state_text))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    try:
        safetensors.torch.save_file(weights, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        _hook("writing")
        _write_text(tmp / CONFIG, config_text)
        if state_tensors is not None:
            safetensors.torch.save_file(state_tensors, str(tmp / STATE_TENSORS), metadata={"format": FORMAT})
            _write_text(tmp / STATE_JSON, state_text)
        for f in tmp.iterdir():
            _fsync(f)
        for name in carry:
            if name not in _OWN and (path / name).exists():
                _link_tree(path / name, tmp / name)
        _fsync(tmp)
        _hook("before-swap")
        _swap_into_place(tmp, path, carry, Path(keep_previous_as) if keep_previous_as is not None else None)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _meta(model: nn.Module, config: RunConfig, meta: dict, train_state: dict | None, dtype) -> dict:
    shape = getattr(model, "sample_shape", None)
    given = meta.get("sample_shape")
    if shape is None and given is None:
        raise CheckpointError("the model has no sample_shape attribute; pass meta={'sample_shape': [...]}")
    if shape is not None and given is not None and tuple(given) != tuple(shape):
        raise CheckpointError(f"meta sample_shape {list(given)} contradicts the model's {list(shape)}")
    steps = train_state.get("step") if isinstance(train_state, dict) else None
    out = {
        "dataset": config.data.name,
        "net": config.model.net,
        "sample_shape": list(shape if shape is not None else given),
        "prediction": config.diffusion.prediction,
        "steps": steps if isinstance(steps, int) else None,
        "metrics": {},
        "parameters": count_parameters(model),
        "weights_dtype": str(dtype or torch.float32).removeprefix("torch."),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "core": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "safetensors": safetensors.__version__,
        },
    }
    out.update(meta)
    out["sample_shape"] = [int(s) for s in out["sample_shape"]]
    return out


_OWN = (WEIGHTS, CONFIG, STATE_TENSORS, STATE_JSON)


def _bytes_to_write(weights: dict, state_tensors: dict | None, *texts: str | None) -> int:
    """What a save puts on disk: tensor bytes, a safetensors header allowance per tensor, and the JSON texts."""
    tensors = list(weights.values()) + list((state_tensors or {}).values())
    return (sum(t.numel() * t.element_size() + 128 for t in tensors)
            + sum(len(t.encode("utf-8")) for t in texts if t is not None))


_hook_hits = 0


def _hook(where: str) -> None:
    """Test hook for crash tests: with $CORE_CHECKPOINT_PAUSE=<where> a save stops there (after skipping
    $CORE_CHECKPOINT_PAUSE_SKIP saves) for $CORE_CHECKPOINT_PAUSE_SECONDS, first writing <where> into the
    file $CORE_CHECKPOINT_PAUSE_MARKER, so a test knows when to kill the process."""
    global _hook_hits
    if os.environ.get("CORE_CHECKPOINT_PAUSE") != where:
        return
    _hook_hits += 1
    if _hook_hits > int(os.environ.get("CORE_CHECKPOINT_PAUSE_SKIP", "0")):
        import time
        marker = os.environ.get("CORE_CHECKPOINT_PAUSE_MARKER")
        if marker:
            Path(marker).write_text(where, encoding="utf-8")
        time.sleep(float(os.environ.get("CORE_CHECKPOINT_PAUSE_SECONDS", "60")))


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link the file or folder tree `src` at `dst` (copies where links are not possible)."""
    if src.is_symlink():
        return
    if src.is_dir():
        dst.mkdir()
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_replaceable(path: Path, carry: tuple[str, ...] = ()) -> None:
    """Only an empty directory or an earlier checkpoint may be replaced: never someone's folder or file."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise CheckpointError(f"cannot write a checkpoint at {path}: something that is not a directory is there")
    if (path.is_dir() and any(p.name not in carry for p in path.iterdir())
            and not ((path / CONFIG).exists() or (path / WEIGHTS).exists())):
        raise CheckpointError(
            f"cannot write a checkpoint at {path}: it is a non-empty directory that is not a checkpoint "
            f"(no {CONFIG} or {WEIGHTS}); choose a new path"
        )


def _swap_into_place(tmp: Path, path: Path, carry: tuple[str, ...] = (), keep_as: Path | None = None) -> None:
    """Rename the finished `tmp` to `path`; an old checkpoint there is moved aside first and then deleted.

    POSIX cannot rename over a non-empty directory, so there is a moment with no directory at
    `path`; if the process dies in it, the complete old checkpoint sits in `.<name>.old-PID-*`, and
    `load` (and `recover`) fall back to it. Either way no half-written checkpoint is ever at `path`.
    """
    if not path.exists():
        os.replace(tmp, path)
    else:
        backup = path.parent / f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(path, backup)
        _hook("between-renames")
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(backup, path)
            raise
        if keep_as is not None and (backup / WEIGHTS).is_file() and not keep_as.exists():
            for name in carry:  # they live on in the new checkpoint
                if name not in _OWN and (backup / name).exists():
                    _remove(backup / name)
            os.replace(backup, keep_as)
        else:
            shutil.rmtree(backup, ignore_errors=True)
    for stale in _backups(path):  # left by a save that was killed between the two renames
        if not _owner_alive(stale):
            shutil.rmtree(stale, ignore_errors=True)
    _fsync(path.parent)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# recovery after a crash


_HIDDEN = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old|side)-(?:(?P<pid>\d+)-)?[0-9a-z_]+")


def _owner_alive(hidden: Path) -> bool:
    """Whether the process that made this hidden folder may still be writing it (folders without a pid: no)."""
    m = _HIDDEN.fullmatch(hidden.name)
    if m is None or m.group("pid") is None:
        return False
    pid = int(m.group("pid"))
    if pid == os.getpid():
        return False  # saves are not run concurrently on one checkpoint within a process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return False
    return True


def _merge_side_folder(side: Path, path: Path) -> None:
    """Put back the log and previews an older save moved into `.NAME.side-*` before it was killed."""
    path.mkdir(parents=True, exist_ok=True)
    for item in side.iterdir():
        target = path / item.name
        if item.is_dir() and not item.is_symlink():
            target.mkdir(exist_ok=True)
            for f in item.iterdir():
                if not (target / f.name).exists():
                    os.replace(f, target / f.name)
        elif not target.exists():
            os.replace(item, target)
        elif item.is_file():  # the run went on writing a new one: the moved-aside lines came first
            merged = target.parent / f".{target.name}.merge-{os.getpid()}"
            with open(merged, "wb") as out:
                for part in (item, target):
                    data = part.read_bytes()
                    out.write(data if data.endswith(b"\n") or not data else data + b"\n")
            os.replace(merged, target)
    shutil.rmtree(side, ignore_errors=True)


def recover(path: str | os.PathLike) -> list[str]:
    """Clean up after saves to `path` that were killed: returns what was done, one line each.

    Removes `.NAME.tmp-*` folders (unfinished writes) whose writer is dead; if no checkpoint is at
    `path` but a whole moved-aside copy `.NAME.old-*` is, renames it back; removes the other old
    copies; and moves a log left in `.NAME.side-*` back into `path`.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    done = []
    hidden = []
    for p in path.parent.glob(f".{glob.escape(path.name)}.*-*"):
        m = _HIDDEN.fullmatch(p.name)
        if m and m.group("name") == path.name and p.is_dir() and not p.is_symlink() and not _owner_alive(p):
            hidden.append((m.group("kind"), p))
    whole = (path / WEIGHTS).is_file() and (path / CONFIG).is_file()
    olds = sorted((p for kind, p in hidden if kind == "old"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in olds:
        if not whole and (old / WEIGHTS).is_file() and (old / CONFIG).is_file():
            leftovers = [p for p in path.iterdir()] if path.is_dir() else []
            if path.is_dir():  # only carried files can be there (a log re-created after the crash)
                for p in leftovers:
                    if not (old / p.name).exists():
                        os.replace(p, old / p.name)
                shutil.rmtree(path, ignore_errors=True)
            os.replace(old, path)
            whole = True
            done.append(f"restored {path.name} from {old.name}")
        else:
            shutil.rmtree(old, ignore_errors=True)
            done.append(f"removed {old.name}")
    for kind, p in hidden:
        if kind == "tmp":
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed {p.name}")
        elif kind == "side":
            _merge_side_folder(p, path)
            done.append(f"moved the files in {p.name} back into {path.name}")
    if done:
        _fsync(path.parent)
    return done


def sweep(root: str | os.PathLike) -> list[str]:
    """`recover` every checkpoint under `root` that has stranded hidden folders beside it; returns what was done."""
    root = Path(root)
    if not root.is_dir():
        return []
    names = set()
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            m = _HIDDEN.fullmatch(d)
            if m:
                names.add(Path(dirpath) / m.group("name"))
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    done = []
    for path in sorted(names):
        done += [f"{path.parent}: {line}" for line in recover(path)]
    return done


def _backups(path: Path) -> list[Path]:
    """Moved-aside copies of the checkpoint at `path`, newest first."""
    found = [p for p in path.parent.glob(f".{glob.escape(path.name)}.old-*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _dumps(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, indent=2, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{what} must be JSON-serialisable: {e}") from None


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk where the OS allows it (directories cannot be opened on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# training state: nested dicts of tensors and plain values <-> (flat tensors, JSON tree)


def flatten_state(state: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested structure into {key: tensor} for safetensors and a JSON-able tree with references.

    Tensors become {"__tensor__": key}; tuples {"__tuple__": [...]}; dicts whose keys are not all
    plain strings (an optimizer's state is keyed by int) {"__items__": [[key, value], ...]}.
    """
    tensors: dict[str, torch.Tensor] = {}

    def enc(obj: Any, where: str) -> Any:
        if torch.is_tensor(obj):
            key = where or "tensor"
            while key in tensors:
                key += "#"
            tensors[key] = obj.detach().to("cpu").contiguous().clone()  # clone: safetensors refuses shared storage
            return {"__tensor__": key}
        if isinstance(obj, (bool, int, float, str)) or obj is None:
            return obj
        if isinstance(obj, tuple):
            return {"__tuple__": [enc(v, f"{where}/{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [enc(v, f"{where}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            plain = all(isinstance(k, str) and not k.startswith("__") for k in obj)
            if plain:
                return {k: enc(v, f"{where}/{k}" if where else k) for k, v in obj.items()}
            items = []
            for k, v in obj.items():
                if not (isinstance(k, (bool, int, float, str)) or k is None):
                    raise CheckpointError(f"train_state key {k!r} at {where or '/'} must be a str, int, float, bool or None")
                items.append([k, enc(v, f"{where}/{k}" if where else str(k))])
            return {"__items__": items}
        raise CheckpointError(
            f"train_state at {where or '/'} holds a {type(obj).__name__}, which cannot be stored without pickling; "
            "allowed: tensors, numbers, strings, bools, None, and lists/tuples/dicts of those"
        )

    return tensors, enc(state, "")


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten_state`."""
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            key = tree["__tensor__"]
            if key not in tensors:
                raise CheckpointError(f"train state refers to tensor {key!r}, which is missing from {STATE_TENSORS}")
            return tensors[key]
        if set(tree) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in tree["__tuple__"])
        if set(tree) == {"__items__"}:
            return {k: unflatten_state(v, tensors) for k, v in tree["__items__"]}
        return {k: unflatten_state(v, tensors) for k, v in tree.items()}
    return tree


# ---------------------------------------------------------------------------------------------
# load


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig, dict]:
    """Rebuild the model a checkpoint describes and fill in its weights; returns (model in eval mode, config, meta)."""
    where = _checkpoint_dir(path)
    config, meta = _read_config(where)
    shape = meta.get("sample_shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise CheckpointError(f"{where / CONFIG}: meta.sample_shape must be a list of positive ints, got {shape!r}")
    try:
        model = build_model(config.model, tuple(shape), seed=0)
    except ValueError as e:
        raise CheckpointError(f"{where / CONFIG}: cannot build the model it describes: {e}") from None
    weights = _read_tensors(where / WEIGHTS)
    _check_weights(model, weights, where / WEIGHTS)
    model.load_state_dict(weights, strict=True)
    return model.to(device).eval(), config, meta


def load_config(path: str | os.PathLike) -> tuple[RunConfig, dict]:
    """(config, meta) of a checkpoint without touching its weights (cheap: for listings and UIs)."""
    return _read_config(_checkpoint_dir(path))


def load_train_state(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """The training state saved with a checkpoint (the `train_state` given to `save`), tensors on `device`."""
    where = _checkpoint_dir(path)
    if not (where / STATE_JSON).is_file() or not (where / STATE_TENSORS).is_file():
        raise CheckpointError(f"{where} has no training state ({STATE_JSON} + {STATE_TENSORS}); it was saved without one")
    try:
        doc = json.loads((where / STATE_JSON).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{where / STATE_JSON} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") not in SUPPORTED_FORMATS or "state" not in doc:
        raise CheckpointError(f"{where / STATE_JSON} is not a training state of format {FORMAT}")
    tensors = {k: v.to(device) for k, v in _read_tensors(where / STATE_TENSORS).items()}
    return unflatten_state(doc["state"], tensors)


def has_train_state(path: str | os.PathLike) -> bool:
    where = Path(path)
    return (where / STATE_JSON).is_file() and (where / STATE_TENSORS).is_file()


def _pickle_error(path: Path) -> CheckpointError:
    return CheckpointError(
        f"only safetensors checkpoints are loaded; {path} is a pickle, which can run code when loaded. "
        f"Convert it in a trusted environment to a directory with {WEIGHTS} and {CONFIG}"
    )


def _looks_pickled(path: Path) -> bool:
    """By name (.pt, .pth, ...) or by first bytes (a zip, or pickle's PROTO opcode), unless it parses as safetensors."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its first byte can be 0x80 too.
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return False
    return head.startswith(_ZIP_MAGIC) or (head[:1] == _PICKLE_MAGIC and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))


def _checkpoint_dir(path: str | os.PathLike) -> Path:
    """Check that `path` is a checkpoint directory (or a save's moved-aside copy of it) and return it."""
    path = Path(path)
    if not path.exists():
        backups = [b for b in _backups(path) if (b / WEIGHTS).is_file() and (b / CONFIG).is_file()]
        if backups:  # a save was killed between its two renames; the old checkpoint is whole here
            return backups[0]
        raise FileNotFoundError(f"no checkpoint at {path}: the path does not exist")
    if path.is_file():
        if _looks_pickled(path):
            raise _pickle_error(path)
        raise CheckpointError(
            f"{path} is a file; a checkpoint is a directory holding {WEIGHTS} and {CONFIG}"
        )
    if not (path / WEIGHTS).is_file():
        pickles = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise _pickle_error(path / pickles[0])
        raise CheckpointError(f"{path} is not a checkpoint: {WEIGHTS} is missing")
    if not (path / CONFIG).is_file():
        raise CheckpointError(f"{path} is not a checkpoint: {CONFIG} is missing")
    return path


def _read_config(where: Path) -> tuple[RunConfig, dict]:
    file = where / CONFIG
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{file} must hold a JSON object with 'format', 'config' and 'meta'")
    missing = [k for k in ("format", "config", "meta") if k not in doc]
    if missing:
        raise CheckpointError(f"{file} lacks {missing}; a checkpoint config holds 'format', 'config' and 'meta'")
    if doc["format"] not in SUPPORTED_FORMATS:
        raise CheckpointError(f"{file} has format {doc['format']!r}; supported: {', '.join(SUPPORTED_FORMATS)}")
    if not isinstance(doc["config"], dict) or not isinstance(doc["meta"], dict):
        raise CheckpointError(f"{file}: 'config' and 'meta' must be JSON objects")
    try:
        config = RunConfig.from_dict(doc["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{file} holds an invalid run config: {e}") from None
    return config, doc["meta"]


def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    if _looks_pickled(file):
        raise _pickle_error(file)
    try:
        return safetensors.torch.load_file(str(file), device="cpu")
    except Exception as e:  # SafetensorError is not exported under a stable name across versions
        raise CheckpointError(f"{file} is not a readable safetensors file: {e}") from None


def _check_weights(model: nn.Module, weights: dict[str, torch.Tensor], file: Path) -> None:
    expected = model.state_dict()

    def some(names):
        names = sorted(names)
        return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")

    problems = []
    missing, unexpected = set(expected) - set(weights), set(weights) - set(expected)
    if missing:
        problems.append(f"missing tensors: {some(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {some(unexpected)}")
    wrong = [
        f"{k} is {list(weights[k].shape)}, the model needs {list(v.shape)}"
        for k, v in expected.items() if k in weights and weights[k].shape != v.shape
    ]
    if wrong:
        problems.append("wrong shapes: " + "; ".join(wrong[:8]) + (f" and {len(wrong) - 8} more" if len(wrong) > 8 else ""))
    if problems:
        raise CheckpointError(f"{file} does not match the model its config describes: " + " | ".join(problems))


# ---------------------------------------------------------------------------------------------
# listing


def list_checkpoints(root: str | os.PathLike) -> list[dict]:
    """Every readable checkpoint under `root` (recursively, skipping hidden folders), sorted by name.

    Each entry: path, name (relative to root), dataset, net, steps, created, prediction,
    sample_shape, resumable. Directories whose config does not parse are left out.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if CONFIG in filenames and WEIGHTS in filenames:
            where = Path(dirpath)
            dirnames[:] = []  # a checkpoint's insides are not more checkpoints
            try:
                config, meta = _read_config(where)
            except CheckpointError:
                continue
            rel = where.relative_to(root).as_posix()
            found.append({
                "path": str(where),
                "name": where.name if rel == "." else rel,
                "dataset": meta.get("dataset", config.data.name),
                "net": config.model.net,
                "steps": meta.get("steps"),
                "created": meta.get("created"),
                "prediction": config.diffusion.prediction,
                "sample_shape": meta.get("sample_shape"),
                "resumable": has_train_state(where),
            })
    return sorted(found, key=lambda e: e["name"])


def sampling_clip(meta: dict) -> float | None:
    """The x0 clip range a checkpoint was trained for (meta "x0_clip"); images default to 1, else no clip."""
    clip = meta.get("x0_clip")
    if clip is not None:
        return float(clip)
    return 1.0 if len(meta.get("sample_shape", ())) == 3 else None
