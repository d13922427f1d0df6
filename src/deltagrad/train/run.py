"""The run folder: what a training run writes, and reading it back (no pickle anywhere).

::

    RUN/
      config.toml          the full resolved config (data, model layer list, optimizer, schedule, training)
      model.safetensors    the weights (PyTorch's state-dict names); metadata: epoch, layer list
      optimizer.safetensors  the optimizer's and the schedule's arrays (momentum buffers, Adam moments)
      state.json           epoch, step, optimizer/schedule state (numbers), RNG states, early-stopping state
      metrics.jsonl        one JSON object per epoch: losses, accuracies, learning rate, gradient norms
      metrics.json         the final test metrics (test_loss, test_accuracy, ...)
      curves.png           loss, accuracy and per-layer gradient norms per epoch

Every file is written atomically (a temporary file in the folder, then ``os.replace``); ``state.json`` is
written last, so it names the epoch that the other checkpoint files hold.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from deltagrad import io as dio
from deltagrad.train import toml_io
from deltagrad.train.errors import CheckpointError

CONFIG, MODEL, OPTIMIZER, STATE = "config.toml", "model.safetensors", "optimizer.safetensors", "state.json"
METRICS_LINES, METRICS, CURVES = "metrics.jsonl", "metrics.json", "curves.png"
STATE_FORMAT = "deltagrad.training-state"
STATE_VERSION = 1
CONFIG_MARK = "# deltagrad run configuration"  # the first line of a config.toml that a run wrote


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never a part."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def prepare_out_dir(path: str | os.PathLike) -> Path:
    """``--out DIR``: create it, or accept an existing folder that holds no run (never overwrite one; a
    ``config.toml`` alone, from a run that stopped before its first checkpoint, may be replaced)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path}: exists and is not a folder")
    if path.is_dir() and any((path / f).exists() for f in (MODEL, STATE)):
        raise CheckpointError(f"{path}: already holds a run; continue it with --resume {path}, "
                              "or choose another --out")
    if (path / CONFIG).exists() and not (path / CONFIG).read_text(errors="replace").startswith(CONFIG_MARK):
        raise CheckpointError(f"{path}: holds a {CONFIG} that a run would overwrite; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot create the run folder ({e.strerror or e})") from None
    return path


def check_run_dir(path: str | os.PathLike) -> Path:
    """A run folder to read: it must exist and hold ``config.toml``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run folder")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a run folder (a run is a folder holding {CONFIG} and {MODEL})")
    if not (path / CONFIG).is_file():
        raise CheckpointError(f"{path}: not a deltagrad run folder (no {CONFIG})")
    return path


def read_config(run: Path) -> dict[str, Any]:
    return toml_io.load(run / CONFIG)


def read_state(run: Path) -> dict[str, Any]:
    """``state.json``, checked to be a deltagrad training state."""
    path = run / STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file (the run has no saved training state)") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid training state (broken JSON: {e})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a deltagrad training state (no format {STATE_FORMAT!r})")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path}: training state version {state.get('version')!r}, this deltagrad reads "
                              f"version {STATE_VERSION}")
    return state


def read_tensors(path: Path, expected: Any = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors and metadata of a safetensors file; any problem is a one-line ``CheckpointError``."""
    try:
        tensors = dio.load(path, expected=expected)
        meta = dio.load_metadata(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except dio.StateDictMismatchError as e:
        problems = "; ".join(line.strip() for line in str(e).splitlines()[1:])
        raise CheckpointError(f"{path}: does not match the model in {CONFIG}: {problems}") from None
    except (dio.CheckpointFileError, OSError) as e:
        raise CheckpointError(str(e)) from None
    return tensors, meta


def read_metric_lines(run: Path, upto_epoch: int | None = None) -> list[dict[str, Any]]:
    """The per-epoch records of ``metrics.jsonl`` (those after ``upto_epoch`` are dropped)."""
    path = run / METRICS_LINES
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise CheckpointError(f"{path}, line {n}: not valid JSON") from None
        if upto_epoch is None or rec.get("epoch", 0) <= upto_epoch:
            out.append(rec)
    return out
