"""Test helpers for run folders: where the current checkpoint's files are, and re-recording their checksums
after a test has changed one on purpose (to reach the checks behind the checksum)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def checkpoint_dir(run: Path) -> Path:
    """The folder of the run's current checkpoint, as ``checkpoint.json`` names it."""
    return run / json.loads((run / "checkpoint.json").read_text())["folder"]


def current(run: Path, name: str) -> Path:
    """A file of the run's current checkpoint: model.safetensors, optimizer.safetensors, state.json, metrics.jsonl."""
    return checkpoint_dir(run) / name


def resign(run: Path) -> None:
    """Record the present sizes and checksums of the current checkpoint's files in ``checkpoint.json``."""
    pointer = json.loads((run / "checkpoint.json").read_text())
    for name, rec in pointer["files"].items():
        data = (run / pointer["folder"] / name).read_bytes()
        rec.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (run / "checkpoint.json").write_text(json.dumps(pointer))


def edit_state(run: Path, change) -> None:
    """Apply ``change`` to the current checkpoint's state.json (a dict) and re-record the checksums."""
    path = current(run, "state.json")
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))
    resign(run)
