"""Whole runs: train (new or resumed), evaluate, predict and describe a run folder.

These are what the ``deltagrad`` command calls; they are plain functions, usable from Python too::

    from deltagrad.train import train_run
    result = train_run({"model": {"name": "cnn"}, "train": {"epochs": 5}}, out="runs/cnn5")
    result["test_accuracy"]
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deltagrad.data import DataError, DataSplits, as_inputs, normalize, read_inputs_file
from deltagrad.train import run as R
from deltagrad.train import toml_io
from deltagrad.train.builders import load_data, resolve
from deltagrad.train.config import check_config, merge
from deltagrad.train.errors import CheckpointError, ConfigError
from deltagrad.train.loop import Trainer
from deltagrad.train.models import count_parameters
from deltagrad.train.plot import CurvesPainter, curves_png

CONFIG_HEADER = (R.CONFIG_MARK[2:] + ": the resolved settings of this run.\n"
                 "Rebuild it with: deltagrad train --config config.toml --out NEW_DIR")


def _label(cfg: dict[str, Any]) -> str:
    return f"{Path(cfg['data']['dataset']).stem}-{cfg['model']['name']}"


def write_config(cfg: dict[str, Any], run: Path) -> None:
    R.atomic_write(run / R.CONFIG, toml_io.dumps(cfg, header=CONFIG_HEADER))


def open_run(run_dir: str | Path) -> tuple[Trainer, DataSplits]:
    """The trainer of a saved run (its model holding the weights of the run's current checkpoint, verified) and
    its data set. A checkpoint that was not made from the run's config and data is refused."""
    run = R.check_run_dir(run_dir)
    cfg = check_config(R.read_config(run), {"__file__": str(run / R.CONFIG)})
    data = load_data(cfg)
    resolve(cfg, data)
    trainer = Trainer(cfg, data, out=None, quiet=True)
    trainer.load_checkpoint(run, weights_only=True)
    return trainer, data


def train_run(doc: Mapping[str, Any] | None = None, sources: Mapping[str, str] | None = None, *,
              out: str | Path | None = None, resume: str | Path | None = None, epochs: int | None = None,
              runs_root: str | Path = "runs", quiet: bool = False, log: Callable[[str], None] | None = None,
              on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Train a new run from the config ``doc`` (with ``sources`` naming where settings came from), or continue
    the run in ``resume`` up to ``epochs``; write the run folder; return the final metrics.

    A new run goes to ``out`` (created if needed; it must be empty or hold a run that never saved a checkpoint)
    or to a new folder under ``runs_root``. The run folder is locked while this runs: a second process that
    would write the same run stops with an error naming the first.
    """
    painter = CurvesPainter()  # a process that imports matplotlib for curves.png while this one trains
    if resume is not None:
        run = R.check_run_dir(resume)
        with R.RunLock(run):
            trainer = _resume(run, epochs, quiet, log)
            if on_start:
                on_start(run)
            trainer.fit()
            return finish(trainer, run, painter)
    cfg = check_config(doc or {}, sources)
    data = load_data(cfg)
    resolve(cfg, data)
    run, created = R.create_out_dir(out) if out is not None else (R.new_run_dir(runs_root, _label(cfg)), True)
    try:
        lock = R.RunLock(run)
    except BaseException:
        if created:
            shutil.rmtree(run, ignore_errors=True)
        raise
    with lock:
        try:
            R.check_new_run_dir(run)
            if on_start:
                on_start(run)
            trainer = Trainer(cfg, data, out=run, quiet=quiet, log=log)
            write_config(cfg, run)
            trainer.save_checkpoint()  # epoch 0: the initial weights, so a run always has a checkpoint to go back to
        except BaseException:
            if created:  # nothing of this run was saved: leave no folder behind
                shutil.rmtree(run, ignore_errors=True)
            raise
        trainer.log(f"training {cfg['model']['name']} ({count_parameters(trainer.model):,} parameters) on "
                    f"{cfg['data']['dataset']} ({len(data.train)} train / {len(data.val)} validation / "
                    f"{len(data.test)} test examples) into {run}")
        trainer.fit()
        return finish(trainer, run, painter)


def _resume(run: Path, epochs: int | None, quiet: bool, log: Callable[[str], None] | None) -> Trainer:
    """The trainer of ``run`` restored from its current checkpoint, to train up to ``epochs``."""
    saved = R.read_config(run)
    if epochs is not None:
        saved = merge(saved, {"train": {"epochs": epochs}})
    cfg = check_config(saved, {"__file__": str(run / R.CONFIG), "train.epochs": "--epochs"})
    data = load_data(cfg)
    resolve(cfg, data)
    trainer = Trainer(cfg, data, out=run, quiet=quiet, log=log)
    trainer.load_checkpoint(run)
    if trainer.stopped_early:
        trainer.log(f"the run stopped early at epoch {trainer.epoch}; nothing more to train")
    elif trainer.epoch >= cfg["train"]["epochs"]:
        trainer.log(f"the run already has {trainer.epoch} epochs (asked for {cfg['train']['epochs']})")
    else:
        write_config(cfg, run)  # the new epoch count
    return trainer


def finish(trainer: Trainer, run: Path, painter: CurvesPainter | None = None) -> dict[str, Any]:
    """Test metrics, ``metrics.json`` and ``curves.png`` (drawn by ``painter`` if given) of a trained run."""
    test_loss, test_acc = trainer.evaluate(trainer.data.test)
    last = trainer.history[-1] if trainer.history else {}
    result = {"test_loss": test_loss, "test_accuracy": test_acc, "test_examples": len(trainer.data.test),
              "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
              "train_loss": last.get("train_loss"), "train_accuracy": last.get("train_accuracy"),
              "epochs": trainer.epoch, "steps": trainer.step, "stopped_early": trainer.stopped_early,
              "train_seconds": round(trainer.train_seconds, 3), "dataset": trainer.cfg["data"]["dataset"],
              "model": trainer.cfg["model"]["name"], "parameters": count_parameters(trainer.model),
              "run": str(run)}
    R.atomic_write(run / R.METRICS, R.dumps_json(result) + "\n")
    if trainer.history:
        draw = painter.png if painter is not None else curves_png
        R.atomic_write(run / R.CURVES, draw(trainer.history, f"{result['model']} on {result['dataset']}"))
    acc = f", test accuracy {100 * test_acc:.2f}%" if test_acc is not None else ""
    measured = f"test loss {test_loss:.4f}{acc} ({len(trainer.data.test)} examples)" if test_loss is not None \
        else "no test examples, so no test loss"
    trainer.log(f"{measured}; run saved in {run}")
    return result


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict[str, Any]:
    """Loss and accuracy of a saved run's model on its data set's ``split`` (test, val or train)."""
    if split not in ("test", "val", "train"):
        raise ConfigError(f"split must be test, val or train, not {split!r}")
    trainer, data = open_run(run_dir)
    loss, acc = trainer.evaluate(getattr(data, split))
    return {f"{split}_loss": loss, f"{split}_accuracy": acc, f"{split}_examples": len(getattr(data, split)),
            "dataset": trainer.cfg["data"]["dataset"], "run": str(run_dir)}


def read_inputs(path: str | Path, data_cfg: dict[str, Any]) -> np.ndarray:
    """Raw inputs for prediction from a ``.npy`` array or a numeric CSV table (a CSV that still holds the
    training target column, found by name or position, has it dropped), checked against the model's input
    shape (``as_inputs``). Only a regular file is read (a FIFO, a folder or a device is refused unopened)."""
    content = read_inputs_file(path)
    shape = tuple(data_cfg.get("input_shape") or ())
    if isinstance(content, np.ndarray):
        return as_inputs(content, shape, str(path)) if shape else content
    names, values, has_header = content
    features = int(np.prod(shape or [values.shape[1]]))
    if values.shape[1] not in (features, features + 1):
        raise DataError(f"{path}: {values.shape[1]} columns, but the model takes {features} features (or "
                        f"{features + 1} columns with the training target)")
    if values.shape[1] == features + 1:
        target = data_cfg.get("target")
        if has_header and isinstance(target, str) and target in names:
            k = names.index(target)
        elif isinstance(target, int) or (isinstance(target, str) and target.lstrip("-").isdigit()):
            k = int(target) % values.shape[1]
        else:
            k = values.shape[1] - 1
        values = np.delete(values, k, axis=1)
    return as_inputs(values, shape, str(path)) if shape else values.astype(np.float32)


def predict_run(run_dir: str | Path, inputs: np.ndarray | str | Path | None = None) -> dict[str, Any]:
    """Predictions of a saved run, for raw ``inputs`` ``(N, *input_shape)`` (an array, or a ``.npy``/``.csv``
    file; normalized as in training) or for its test split. Returns ``predictions`` (class labels or values)
    and ``outputs``; for classification also ``confidence`` (the softmax probability of the prediction);
    for the test split also ``targets``."""
    trainer, data = open_run(run_dir)
    d = trainer.cfg["data"]
    targets = None
    if inputs is None:
        x, y = data.test.arrays
        targets = y
    else:
        if isinstance(inputs, (str, Path)):
            inputs = read_inputs(inputs, d)
        x = normalize(as_inputs(inputs, tuple(d["input_shape"])), d.get("mean"), d.get("std"))
        if not np.isfinite(x).all():  # finite raw inputs, far outside the training range: (x − mean)/std overflows
            raise DataError(f"inputs: {int(x.size - np.isfinite(x).sum())} values overflow float32 when normalized "
                            "as in training ((x − mean) / std)")
    out = trainer.predict(x)
    result: dict[str, Any] = {"outputs": out}
    if trainer.classification:
        z = out - out.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        idx = out.argmax(axis=1)
        classes = d.get("classes") or list(range(out.shape[1]))
        result.update(predictions=[classes[i] for i in idx], confidence=p[np.arange(len(idx)), idx])
        if targets is not None:
            result["targets"] = [classes[i] for i in targets]
    else:
        result["predictions"] = out
        if targets is not None:
            result["targets"] = targets
    return result


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """What a run folder holds: its config, its current checkpoint (verified: epoch, step, model size, metrics
    per epoch) and final metrics, without loading the data. A damaged checkpoint is reported under
    ``checkpoint_error`` rather than raised, so that the rest can still be seen."""
    run = R.check_run_dir(run_dir)
    cfg = check_config(R.read_config(run), {"__file__": str(run / R.CONFIG)})
    info: dict[str, Any] = {"run": str(run), "config": cfg, "history": []}
    try:
        ckpt = R.read_checkpoint(run)
        state = R.parse_state(ckpt)
        tensors, _ = R.read_tensors(ckpt.files[R.MODEL], ckpt.name(R.MODEL))
        history = R.parse_metric_lines(ckpt)
        saved = check_config(state["config"], {"__file__": ckpt.name(R.STATE)})
        problem = R.config_difference(json.loads(R.dumps_json(saved)), json.loads(R.dumps_json(cfg)))
        if problem:
            raise CheckpointError(f"{run / R.CONFIG} is not what the run was built from: {problem}")
    except (CheckpointError, ConfigError) as e:
        info["checkpoint_error"] = str(e)
    else:
        info.update(epoch=state["epoch"], step=state["step"], stopped_early=state["early_stopping"]["stopped"],
                    history=history, checkpoint={"epoch": ckpt.epoch, "folder": str(ckpt.folder), "verified": True})
        info["parameters"] = int(sum(t.data.size for k, t in tensors.items()
                                     if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))))
    if os.path.lexists(run / R.METRICS):
        metrics = R.parse_json(R.read_file(run / R.METRICS), str(run / R.METRICS))
        if not isinstance(metrics, dict):
            raise CheckpointError(f"{run / R.METRICS}: not a JSON object of metrics")
        info["metrics"] = metrics
        if "epoch" in info and metrics.get("epochs") != info["epoch"]:
            info["metrics_stale"] = (f"{R.METRICS} is of epoch {R._show(metrics.get('epochs'))}, the checkpoint of "
                                     f"epoch {info['epoch']} (deltagrad eval {run} measures it)")
    info["files"] = sorted(p.name for p in run.iterdir() if not p.name.startswith("."))
    return info
