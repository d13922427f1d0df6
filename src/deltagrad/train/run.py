"""The run folder: what a training run writes, how a checkpoint becomes current, and reading it back.

::

    RUN/
      config.toml          the resolved config the run was built from (data, model layer list, optimizer, ...)
      checkpoint.json      the current checkpoint: its folder and epoch, and the size and SHA-256 of each file
      checkpoints/epoch-000030/
        model.safetensors    the weights (PyTorch's state-dict names); metadata: epoch, layer list
        optimizer.safetensors  the optimizer's and the schedule's arrays (momentum buffers, Adam moments)
        state.json           epoch, step, optimizer/schedule state (numbers), RNG states, early stopping,
                             the resolved config and the fingerprint of the data it was trained on
        metrics.jsonl        one JSON object per epoch up to this one: losses, accuracies, lr, gradient norms
      metrics.json         the final test metrics (with the epoch of the checkpoint they describe)
      curves.png           loss, accuracy and per-layer gradient norms per epoch
      .lock                held by the one process that writes the run (it names that process)

A checkpoint is a transaction. Its files are written into a new folder and flushed to disk; then
``checkpoint.json`` is replaced atomically, and that single step makes the new checkpoint current. A crash, a
kill or a full disk at any moment leaves the previous checkpoint current and complete, so ``eval``, ``info``
and ``--resume`` always agree. Reading verifies every file against its recorded size and checksum. The
folder of the previous checkpoint is kept (a reader may still be reading it); older ones are removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deltagrad import io as dio
from deltagrad.train import toml_io
from deltagrad.train.errors import CheckpointError

CONFIG, POINTER, CHECKPOINTS, LOCK = "config.toml", "checkpoint.json", "checkpoints", ".lock"
MODEL, OPTIMIZER, STATE, METRICS_LINES = "model.safetensors", "optimizer.safetensors", "state.json", "metrics.jsonl"
METRICS, CURVES = "metrics.json", "curves.png"
CHECKPOINT_FILES = (MODEL, OPTIMIZER, STATE, METRICS_LINES)
RUN_FILES = (CONFIG, POINTER, METRICS, CURVES, LOCK)  # the run's own files at its top level
STATE_FORMAT, POINTER_FORMAT = "deltagrad.training-state", "deltagrad.checkpoint"
STATE_VERSION = 2
CONFIG_MARK = "# deltagrad run configuration"  # the first line of a config.toml that a run wrote
MAX_JSON_BYTES = 256 * 2**20
_FOLDER = re.compile(r"^epoch-\d{6}(-\d+)?$")

atomic_write = dio.atomic_write


# -- JSON ---------------------------------------------------------------------------------------------------------
def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as strings ("nan", "inf"), since JSON has no such numbers."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def dumps_json(obj: Any) -> str:
    """Strict JSON of ``obj`` (non-finite floats written as strings)."""
    return json.dumps(json_safe(obj), allow_nan=False)


def parse_json(data: bytes, name: str) -> Any:
    """The JSON value in ``data``; text that is not UTF-8, not JSON, or nested absurdly deep is a one-line error."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{name}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise CheckpointError(f"{name}: not valid JSON (nested too deeply)") from None
    except ValueError as e:
        raise CheckpointError(f"{name}: not valid JSON ({e})") from None


def read_file(path: Path, limit: int | None = MAX_JSON_BYTES) -> bytes:
    """The bytes of a run's file; missing files, folders, FIFOs and devices are one-line errors (never a hang)."""
    try:
        return dio.read_regular_file(path, limit)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: a folder where a file should be") from None
    except dio.CheckpointFileError as e:
        raise CheckpointError(str(e)) from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None


# -- folders --------------------------------------------------------------------------------------------------------
def new_run_dir(root: str | os.PathLike = "runs", label: str = "run") -> Path:
    """A new, empty folder ``root/<date>-<time>-<label>`` (``-2``, ``-3``... if that exists)."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    for k in range(1, 1000):
        path = root / (f"{stamp}-{safe}" + (f"-{k}" if k > 1 else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise CheckpointError(f"{root}: cannot find a free name for a new run folder")


def _nonempty_path(path: str | os.PathLike, what: str) -> Path:
    if not os.fspath(path).strip():
        raise CheckpointError(f"{what} is an empty path; name a folder")
    return Path(path)


def create_out_dir(path: str | os.PathLike) -> tuple[Path, bool]:
    """``--out DIR``: the folder, created if needed (with whether it was). What it holds is checked by
    ``check_new_run_dir`` once the folder is locked."""
    path = _nonempty_path(path, "--out")
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path}: exists and is not a folder")
    try:
        path.mkdir(parents=True)  # whether this process made it decides whether it may remove it
        created = True
    except FileExistsError:
        created = False
    except OSError as e:
        raise CheckpointError(f"{path}: cannot create the run folder ({e.strerror or e})") from None
    return path, created


def check_new_run_dir(path: Path) -> None:
    """A new run may go into ``path`` only if it holds nothing but what a run that never finished its first
    checkpoint leaves (its lock, its config.toml, an uncommitted checkpoint folder)."""
    if (path / POINTER).exists() or (path / STATE).exists():
        raise CheckpointError(f"{path}: already holds a run; continue it with --resume {path}, or choose another --out")
    foreign = []
    for entry in sorted(os.listdir(path)):
        p = path / entry
        if entry == LOCK or (entry.startswith(".") and entry.endswith(".tmp")):
            continue
        if entry == CONFIG and p.is_file() and _starts_with(p, CONFIG_MARK):
            continue
        if entry == CHECKPOINTS and p.is_dir() and all(_FOLDER.match(e) for e in os.listdir(p)):
            continue
        foreign.append(entry)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise CheckpointError(f"{path}: holds files that are not a deltagrad run ({shown}); a new run needs an empty "
                              "or new folder: choose another --out")


def _starts_with(path: Path, mark: str) -> bool:
    try:
        return dio.read_regular_file(path, 2**20).startswith(mark.encode())
    except (OSError, dio.CheckpointFileError):
        return False


def check_run_dir(path: str | os.PathLike) -> Path:
    """A run folder to read: it must exist and hold ``config.toml``."""
    path = _nonempty_path(path, "the run folder")
    if not path.exists():
        raise CheckpointError(f"{path}: no such run folder")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a run folder (a run is a folder holding {CONFIG} and {POINTER})")
    if not (path / CONFIG).exists():
        raise CheckpointError(f"{path}: not a deltagrad run folder (no {CONFIG})")
    return path


def check_output_path(run: Path, output: str | os.PathLike) -> Path:
    """A file that a command writes for the user (predictions, an export) must not be one of the run's own."""
    out = _nonempty_path(output, "--output")
    if out.is_dir():
        raise CheckpointError(f"{out}: is a folder; name a file to write")
    target, home = out.resolve(), run.resolve()
    if target.parent == home and target.name in RUN_FILES or home / CHECKPOINTS in target.parents \
            or target == home / CHECKPOINTS:
        raise CheckpointError(f"{out}: is one of the run's own files; write the output somewhere else")
    return out


def read_config(run: Path) -> dict[str, Any]:
    path = run / CONFIG
    data = read_file(path, 16 * 2**20)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    return toml_io.loads(text, str(path))


# -- one writer per run ------------------------------------------------------------------------------------------
class RunLock:
    """An exclusive lock on a run folder (``RUN/.lock``, ``flock``): one process writes a run at a time. The
    kernel releases it when the process ends however it ends, so a dead process never keeps it."""

    def __init__(self, run: Path) -> None:
        import fcntl  # POSIX

        self.path = run / LOCK
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 4096, 0).decode("utf-8", "replace")
            os.close(self._fd)
            raise CheckpointError(f"{run}: another deltagrad process is writing this run "
                                  f"({_describe_holder(holder)}); wait for it to finish or stop it") from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(me) + "\n").encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _describe_holder(text: str) -> str:
    try:
        h = json.loads(text)
        return f"pid {int(h['pid'])} on {h['host']}, since {h['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that is starting"


# -- checkpoints: written as a transaction, read verified --------------------------------------------------------
@dataclass
class Checkpoint:
    """The files of a run's current checkpoint, read and verified against ``checkpoint.json``."""

    run: Path
    epoch: int
    folder: Path
    files: dict[str, bytes]

    def name(self, file: str) -> str:
        return str(self.folder / file)


def _pointer(run: Path) -> dict[str, Any] | None:
    """``checkpoint.json`` checked for form (not the files it names), or None when there is none."""
    path = run / POINTER
    if not os.path.lexists(path):
        return None
    rec = parse_json(read_file(path, 2**20), str(path))
    files = rec.get("files") if isinstance(rec, dict) else None
    folder = rec.get("folder") if isinstance(rec, dict) else None
    ok = (isinstance(rec, dict) and rec.get("format") == POINTER_FORMAT and isinstance(folder, str)
          and folder.startswith(f"{CHECKPOINTS}/") and _FOLDER.match(folder[len(CHECKPOINTS) + 1:]) is not None
          and _is_count(rec.get("epoch")) and isinstance(files, dict) and set(files) == set(CHECKPOINT_FILES)
          and all(isinstance(f, dict) and _is_count(f.get("bytes")) and isinstance(f.get("sha256"), str)
                  for f in files.values()))
    if not ok:
        raise CheckpointError(f"{path}: not a valid checkpoint record (it must name a folder under {CHECKPOINTS}/, "
                              f"its epoch and the size and sha256 of {', '.join(CHECKPOINT_FILES)})")
    return rec


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def current_epoch(run: Path) -> int | None:
    """The epoch of the current checkpoint as ``checkpoint.json`` records it (files not verified)."""
    rec = _pointer(run)
    return None if rec is None else rec["epoch"]


def write_checkpoint(run: Path, epoch: int, files: dict[str, bytes]) -> Path:
    """Make ``files`` (all of ``CHECKPOINT_FILES``) the run's current checkpoint, as one transaction."""
    previous = _pointer(run)
    root = run / CHECKPOINTS
    name = f"epoch-{epoch:06d}"
    if previous is not None and previous["folder"].startswith(f"{CHECKPOINTS}/{name}"):
        name = f"{name}-{int(time.time() * 1000)}"  # the same epoch again: never write into the current folder
    folder = root / name
    kept = f"the checkpoint of epoch {previous['epoch']} is kept" if previous else "no checkpoint was saved yet"
    try:
        root.mkdir(exist_ok=True)
        if folder.exists():  # left by a write that never became current
            shutil.rmtree(folder)
        folder.mkdir()
        record = {}
        for fname, data in files.items():
            _write_durably(folder / fname, data)
            record[fname] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        dio.fsync_folder(folder)
        dio.fsync_folder(root)
        pointer = {"format": POINTER_FORMAT, "version": 1, "epoch": epoch, "folder": f"{CHECKPOINTS}/{name}",
                   "files": record}
        dio.atomic_write(run / POINTER, json.dumps(pointer, indent=1) + "\n")  # the commit
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise CheckpointError(f"{run}: cannot write the checkpoint of epoch {epoch} ({e.strerror or e}); "
                              f"{kept}") from None
    keep = {name} | ({previous["folder"].split("/", 1)[1]} if previous else set())
    for entry in os.listdir(root):
        if entry not in keep:
            shutil.rmtree(root / entry, ignore_errors=True)
    return folder


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(run: Path) -> Checkpoint:
    """The current checkpoint's files, each checked against its recorded size and SHA-256."""
    for attempt in range(3):  # a writer may replace the checkpoint and remove old folders while we read
        rec = _pointer(run)
        if rec is None:
            if (run / STATE).exists():
                raise CheckpointError(f"{run}: a run folder of an older deltagrad (its checkpoint is not a "
                                      f"transaction); train it again with --config {run / CONFIG} --out NEW")
            raise CheckpointError(f"{run}: holds no checkpoint ({POINTER} is missing: the run stopped before "
                                  "saving its first)")
        folder = run / rec["folder"]
        try:
            files = {name: _read_verified(folder / name, info) for name, info in rec["files"].items()}
        except FileNotFoundError as e:
            if attempt == 2 or _pointer(run) == rec:
                raise CheckpointError(f"{e.filename}: no such file (the checkpoint of epoch {rec['epoch']} "
                                      "is incomplete)") from None
            continue
        return Checkpoint(run, rec["epoch"], folder, files)
    raise AssertionError("unreachable")


def _read_verified(path: Path, info: dict[str, Any]) -> bytes:
    if not os.path.lexists(path):
        raise FileNotFoundError(2, "no such file", str(path))
    data = read_file(path, limit=None)
    if len(data) != info["bytes"]:
        raise CheckpointError(f"{path}: {len(data):,} bytes, but the checkpoint recorded {info['bytes']:,} (the "
                              "file was truncated or changed after it was saved)")
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise CheckpointError(f"{path}: checksum mismatch (the file was damaged or changed after it was saved)")
    return data


def read_tensors(data: bytes, name: str, expected: Any = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors and metadata of a safetensors file's bytes; any problem is a one-line ``CheckpointError``."""
    try:
        tensors = dio.loads(data, name, expected=expected)
        header = dio._parse_header(name, data)
    except dio.StateDictMismatchError as e:
        problems = "; ".join(line.strip() for line in str(e).splitlines()[1:])
        raise CheckpointError(f"{name}: does not match the model in {CONFIG}: {problems}") from None
    except dio.CheckpointFileError as e:
        raise CheckpointError(str(e)) from None
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if not k.startswith("deltagrad.") or
            k in ("deltagrad.epoch", "deltagrad.layers")}
    for key, t in tensors.items():
        if t.data.dtype.kind == "f" and not np.isfinite(t.data).all():
            raise CheckpointError(f"{name}: tensor '{key}' holds non-finite values (NaN or infinity); refused")
    return tensors, meta


def parse_state(ckpt: Checkpoint) -> dict[str, Any]:
    """``state.json`` of a checkpoint, checked to be a deltagrad training state of the checkpoint's epoch."""
    name = ckpt.name(STATE)
    state = parse_json(ckpt.files[STATE], name)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{name}: not a deltagrad training state (no format {STATE_FORMAT!r})")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{name}: training state version {state.get('version')!r}, this deltagrad reads "
                              f"version {STATE_VERSION}")
    for key, want in (("epoch", "a whole number >= 0"), ("step", "a whole number >= 0")):
        if not _is_count(state.get(key)):
            raise CheckpointError(f"{name}: {key} must be {want}, got {_show(state.get(key))}")
    if state["epoch"] != ckpt.epoch:
        raise CheckpointError(f"{name}: is of epoch {state['epoch']}, but {POINTER} says {ckpt.epoch}")
    for key, kind in (("rng", dict), ("state", dict), ("early_stopping", dict), ("config", dict), ("data", dict)):
        if not isinstance(state.get(key), kind):
            raise CheckpointError(f"{name}: '{key}' must be a JSON object, got {_show(state.get(key))}")
    es = state["early_stopping"]
    best = es.get("best_val_loss")
    if not (best is None or best in ("nan", "inf") or _is_number(best)) or not _is_count(es.get("bad_epochs")) \
            or not isinstance(es.get("stopped"), bool):
        raise CheckpointError(f"{name}: early_stopping must hold best_val_loss (a number or null), bad_epochs "
                              f"(a whole number) and stopped (true/false), got {_show(es)}")
    seconds = state.get("train_seconds", 0.0)
    if not (_is_number(seconds) and math.isfinite(seconds) and seconds >= 0):
        raise CheckpointError(f"{name}: train_seconds must be a finite number >= 0, got {_show(seconds)}")
    return state


def parse_metric_lines(ckpt: Checkpoint) -> list[dict[str, Any]]:
    """The per-epoch records of a checkpoint's ``metrics.jsonl``: one for each epoch 1..epoch, in order."""
    name = ckpt.name(METRICS_LINES)
    try:
        text = ckpt.files[METRICS_LINES].decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{name}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rec = parse_json(line.encode(), f"{name}, line {n}")
        if not isinstance(rec, dict) or rec.get("epoch") != len(out) + 1:
            raise CheckpointError(f"{name}, line {n}: not the record of epoch {len(out) + 1}")
        out.append(rec)
    if len(out) != ckpt.epoch:
        raise CheckpointError(f"{name}: has {len(out)} epoch records, the checkpoint is of epoch {ckpt.epoch}")
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def fingerprint(arrays: list[np.ndarray]) -> str:
    """A SHA-256 of arrays' dtypes, shapes and bytes (a data set's split, exactly as a model sees it)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def config_difference(saved: Any, current: Any, path: str = "") -> str | None:
    """The first setting in which two resolved configs differ (``train.epochs``, the target that ``--epochs``
    moves, excepted), as ``"optimizer.lr: 0.05 ..., 0.1 ..."``; None when they agree."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current)):
            sub = f"{path}.{key}" if path else key
            if sub == "train.epochs":
                continue
            found = config_difference(saved.get(key), current.get(key), sub)
            if found:
                return found
        return None
    if json_safe(saved) == json_safe(current):
        return None
    return f"{path} is {_show(json_safe(saved))} in the checkpoint but {_show(json_safe(current))} now"
