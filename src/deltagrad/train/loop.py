"""The fit loop: epochs of minibatch SGD steps, validation, schedules, clipping, early stopping, checkpoints.

Each step is the notes' loop: forward pass, loss, backward pass (``loss.backward()`` fills every
parameter's ``.grad``), then the optimizer's update ``θ ← θ − η ∇J``. Around it the loop

* stops at the first non-finite loss or gradient (``DivergenceError`` naming the epoch and step) before the
  update, so no non-finite weight is ever written; the last checkpoint (end of the previous epoch) stays;
* clips the global gradient norm to ``clip_grad_norm`` (PyTorch's ``clip_grad_norm_``) when set;
* logs, per epoch, each layer's gradient norm: the root mean square over the epoch's steps of
  ``‖∂J/∂θ_layer‖₂`` (all of a layer's parameters together), where vanishing or exploding gradients show;
* seeds everything from ``train.seed`` (weights, dropout masks, shuffling), and saves every generator's state
  in each checkpoint, so a resumed run repeats an uninterrupted one bit for bit.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deltagrad import io as dio
from deltagrad import nn
from deltagrad import random as dg_random
from deltagrad.autograd import no_grad
from deltagrad.data import DataLoader, DataSplits, TensorDataset, split_warnings
from deltagrad.optim import state_from_flat, state_to_flat
from deltagrad.optim.lr_scheduler import ReduceLROnPlateau
from deltagrad.tensor import Tensor
from deltagrad.train import divergence
from deltagrad.train import run as R
from deltagrad.train.builders import make_optimizer, make_scheduler
from deltagrad.train.config import FILE_VALUE_CHECKS, check_config
from deltagrad.train.errors import CheckpointError, ConfigError, DivergenceError
from deltagrad.train.models import build_model, initialize
from deltagrad.train.progress import Progress

LOADER_STREAM = 0x5EED  # the shuffling generator is seeded with (seed, LOADER_STREAM): its own stream
EVAL_BATCH = 1024


def _layer_groups(model: nn.Module) -> tuple[list[Tensor], list[str], np.ndarray]:
    """The trainable parameters, a name per layer (``"1.Linear"``) and each parameter's layer index."""
    params, names, owner = [], [], []
    for mod_name, module in model.named_modules():
        own = [p for _, p in module.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        names.append(f"{mod_name}.{type(module).__name__}" if mod_name else type(module).__name__)
        params.extend(own)
        owner.extend([len(names) - 1] * len(own))
    return params, names, np.asarray(owner, dtype=np.int64)


def _sq_norm(g: np.ndarray) -> float:
    s = float(np.vdot(g, g))
    if not math.isfinite(s) and np.isfinite(g).all():  # float32 overflow of a finite, huge gradient
        s = float(np.linalg.norm(g.astype(np.float64))) ** 2
    return s


class Trainer:
    """Train the model that ``cfg`` (a resolved config) describes on ``data``; checkpoint into ``out``.

    >>> trainer = Trainer(cfg, load_dataset("digits"), out=Path("runs/x"))
    >>> trainer.fit()                      # epochs 1..cfg["train"]["epochs"]
    >>> trainer.evaluate(trainer.data.test)
    (0.071..., 0.983...)
    """

    def __init__(self, cfg: dict[str, Any], data: DataSplits, out: Path | None = None, quiet: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        self.cfg, self.data, self.out, self.quiet = cfg, data, out, quiet
        self._log = log
        t = cfg["train"]
        dg_random.manual_seed(t["seed"])
        self.model = build_model(cfg["model"]["layers"])
        initialize(self.model, cfg["model"].get("init", "default"), cfg["model"].get("activation", "relu"))
        self.classification = data.task == "classification"
        self.loss_fn = nn.CrossEntropyLoss() if self.classification else nn.MSELoss()
        self.optimizer = make_optimizer(cfg["optimizer"], self.model.parameters())
        self.scheduler = make_scheduler(cfg["scheduler"], self.optimizer)
        self.loader_rng = np.random.default_rng([t["seed"], LOADER_STREAM])
        has_bn = any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in self.model.modules())
        self.loader = DataLoader(data.train, batch_size=t["batch_size"], shuffle=True, generator=self.loader_rng,
                                 drop_last=has_bn and len(data.train) % t["batch_size"] == 1)
        self.params, self.layer_names, self._owner = _layer_groups(self.model)
        self.epoch = 0            # epochs completed
        self.step = 0             # optimizer steps taken
        self.history: list[dict[str, Any]] = []
        self.best_val_loss: float | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.train_seconds = 0.0
        self._data_fingerprint: dict[str, Any] | None = None

    def log(self, line: str) -> None:
        if self._log is not None:
            self._log(line)
        elif not self.quiet:
            print(line, flush=True)

    # -- evaluation ----------------------------------------------------------------------------------------
    def evaluate(self, dataset: TensorDataset) -> tuple[float | None, float | None]:
        """``(mean loss, accuracy)`` on ``dataset`` (accuracy ``None`` for regression), in eval mode; both
        ``None`` for an empty dataset (there is nothing to measure: not NaN)."""
        x, y = dataset.arrays
        n = len(x)
        if n == 0:
            return None, None
        was_training = self.model.training
        self.model.eval()
        total, correct = 0.0, 0
        try:
            with no_grad():
                for i in range(0, n, EVAL_BATCH):
                    xb, yb = Tensor._make(x[i:i + EVAL_BATCH], None), Tensor._make(y[i:i + EVAL_BATCH], None)
                    out = self.model(xb)
                    total += float(self.loss_fn(out, yb).item()) * len(xb.data)
                    if self.classification:
                        correct += int((out.data.argmax(1) == yb.data).sum())
        finally:
            self.model.train(was_training)
        return total / n, (correct / n if self.classification else None)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs (logits, or regression values) for normalized inputs ``x``."""
        self.model.eval()
        with no_grad():
            outs = [self.model(Tensor(x[i:i + EVAL_BATCH])).data for i in range(0, len(x), EVAL_BATCH)]
        return np.concatenate(outs) if outs else np.zeros((0, self.data.num_outputs), np.float32)

    # -- one epoch -----------------------------------------------------------------------------------------
    def _diverged(self, what: str, step_in_epoch: int, xb: Tensor, yb: Tensor, loss: float | None = None
                  ) -> DivergenceError:
        """The error for a step whose loss (``loss``) or gradient norm went non-finite, naming what did first
        (the batch, a weight, the loss, a gradient) with advice that fits it: examined only now, once it
        happened, so that healthy steps pay nothing."""
        if self.out is None:
            kept = "nothing was saved"
        elif self.epoch == 0:
            kept = f"the checkpoint of epoch 0 (the initial weights) in {self.out} is kept"
        else:
            kept = f"the checkpoint of epoch {self.epoch} in {self.out} is kept"
        cause = divergence.explain(self.model, xb, yb, first_step=self.step == 0, loss=loss, params=self.params)
        return DivergenceError(f"training diverged: {what} at epoch {self.epoch + 1}, step {step_in_epoch} "
                               f"(step {self.step + 1} of the run); {kept}. {cause}", self.epoch + 1, self.step + 1)

    def train_epoch(self, progress: Progress) -> dict[str, Any]:
        model, loss_fn, opt, params, owner = self.model, self.loss_fn, self.optimizer, self.params, self._owner
        clip = self.cfg["train"]["clip_grad_norm"]
        sq = np.zeros(len(params))
        loss_sum, correct, seen, steps = 0.0, 0, 0, 0
        model.train()
        start = time.perf_counter()
        for xb, yb in self.loader:
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            lv = loss.item()
            if not math.isfinite(lv):
                raise self._diverged(f"the loss is {lv}", steps + 1, xb, yb, loss=lv)
            loss.backward()
            norms = [_sq_norm(p.grad.data) if p.grad is not None else 0.0 for p in params]
            total = math.fsum(norms)
            if not math.isfinite(total):
                raise self._diverged("a gradient is not finite", steps + 1, xb, yb)
            if clip and total > clip * clip:
                coef = clip / (math.sqrt(total) + 1e-6)
                for p in params:
                    if p.grad is not None:
                        p.grad = Tensor._make(p.grad.data * p.grad.data.dtype.type(coef), None)
            opt.step()
            sq += norms
            n = len(yb.data)
            loss_sum += lv * n
            seen += n
            if self.classification:
                correct += int((out.data.argmax(1) == yb.data).sum())
            steps += 1
            self.step += 1
            progress.update(lv)
        seconds = time.perf_counter() - start
        layer_sq = np.bincount(owner, weights=sq, minlength=len(self.layer_names)) / max(steps, 1)
        return {"train_loss": loss_sum / max(seen, 1),
                "train_accuracy": correct / max(seen, 1) if self.classification else None,
                "grad_norm": {name: float(math.sqrt(v)) for name, v in zip(self.layer_names, layer_sq)},
                "steps": steps, "seconds": seconds, "steps_per_second": steps / seconds if seconds > 0 else None}

    # -- the loop --------------------------------------------------------------------------------------------
    def fit(self, epochs: int | None = None) -> list[dict[str, Any]]:
        """Train until ``epochs`` epochs are complete (or early stopping); checkpoint after each epoch."""
        epochs = self.cfg["train"]["epochs"] if epochs is None else epochs
        patience = self.cfg["train"]["patience"]
        for line in split_warnings(self.data):
            self.log(line)
        with Progress(total=epochs * len(self.loader), initial=self.epoch * len(self.loader),
                      disable=self.quiet, desc=f"epoch {self.epoch + 1}/{epochs}") as progress:
            while self.epoch < epochs and not self.stopped_early:
                progress.set_epoch(self.epoch + 1, epochs)
                lr = float(self.optimizer.param_groups[0]["lr"])
                rec = self.train_epoch(progress)
                val_loss, val_acc = self.evaluate(self.data.val)
                self.epoch += 1
                self.train_seconds += rec["seconds"]
                if self.scheduler is not None:
                    if isinstance(self.scheduler, ReduceLROnPlateau):
                        self.scheduler.step(val_loss)
                    else:
                        self.scheduler.step()
                if patience and val_loss is not None:
                    if self.best_val_loss is None or val_loss < self.best_val_loss:
                        self.best_val_loss, self.bad_epochs = val_loss, 0
                    else:
                        self.bad_epochs += 1
                        self.stopped_early = self.bad_epochs >= patience
                record = {"epoch": self.epoch, "step": self.step, "lr": lr, "train_loss": rec["train_loss"],
                          "train_accuracy": rec["train_accuracy"], "val_loss": val_loss, "val_accuracy": val_acc,
                          "grad_norm": rec["grad_norm"], "seconds": rec["seconds"],
                          "steps_per_second": rec["steps_per_second"]}
                self.history.append(record)
                self.save_checkpoint()
                progress.write(self._epoch_line(record, epochs), self.log)
                if self.stopped_early:
                    progress.write(f"early stopping: the validation loss has not improved for {patience} epochs",
                                   self.log)
        return self.history

    def _epoch_line(self, r: dict[str, Any], epochs: int) -> str:
        def acc(v: float | None) -> str:
            return f" acc {100 * v:5.2f}%" if v is not None else ""
        rate = f"  {r['steps_per_second']:,.0f} steps/s" if r["steps_per_second"] else ""
        val = (f"val loss {r['val_loss']:.4f}{acc(r['val_accuracy'])}" if r["val_loss"] is not None
               else "no validation examples")
        return (f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  train loss {r['train_loss']:.4f}"
                f"{acc(r['train_accuracy'])}  {val}  lr {r['lr']:.3g}{rate}")

    # -- checkpoints -----------------------------------------------------------------------------------------
    @property
    def data_fingerprint(self) -> dict[str, Any]:
        """What the run is trained on: a SHA-256 of the three splits as the model sees them, and their sizes."""
        if self._data_fingerprint is None:
            splits = (self.data.train, self.data.val, self.data.test)
            self._data_fingerprint = {"sha256": R.fingerprint([a for s in splits for a in s.arrays]),
                                      "examples": [len(s) for s in splits]}
        return self._data_fingerprint

    def checkpoint_files(self) -> dict[str, bytes]:
        """The files of a checkpoint of the present state: weights, optimizer/schedule arrays, training state
        (with the config and data fingerprint the run was built from) and the metrics of every epoch so far."""
        for name, p in self.model.state_dict().items():
            if p.data.dtype.kind == "f" and not np.isfinite(p.data).all():
                raise DivergenceError(f"training diverged: {name} holds non-finite values after epoch "
                                      f"{self.epoch} (step {self.step}); it was not saved", self.epoch, self.step)
        meta = {"deltagrad.epoch": str(self.epoch), "deltagrad.layers": json.dumps(self.cfg["model"]["layers"])}
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        arrays, flat = state_to_flat({"optimizer": self.optimizer.state_dict(), "scheduler": sched})
        state = {"format": R.STATE_FORMAT, "version": R.STATE_VERSION, "epoch": self.epoch, "step": self.step,
                 "rng": {"global": dg_random.get_rng_state(), "loader": self.loader_rng.bit_generator.state},
                 "state": flat, "early_stopping": {"best_val_loss": self.best_val_loss,
                                                   "bad_epochs": self.bad_epochs, "stopped": self.stopped_early},
                 "train_seconds": self.train_seconds, "config": self.cfg, "data": self.data_fingerprint}
        return {R.MODEL: dio.dumps(self.model.state_dict(), metadata=meta),
                R.OPTIMIZER: dio.dumps(arrays, metadata={"deltagrad.epoch": str(self.epoch)}),
                R.STATE: (R.dumps_json(state) + "\n").encode(),
                R.METRICS_LINES: "".join(R.dumps_json(h) + "\n" for h in self.history).encode()}

    def save_checkpoint(self) -> None:
        """Make the present state the run's current checkpoint in ``out`` (one transaction, see ``train.run``)."""
        if self.out is not None:
            R.write_checkpoint(self.out, self.epoch, self.checkpoint_files())

    def load_checkpoint(self, run: Path, weights_only: bool = False) -> R.Checkpoint:
        """Continue from the current checkpoint of ``run``: weights and (unless ``weights_only``) optimizer,
        schedule, RNG states, counters and metrics. The checkpoint is verified first, and must have been made
        from this trainer's config and data: anything else is refused, naming the difference."""
        ckpt = R.read_checkpoint(run)
        state = R.parse_state(ckpt)
        self._check_built_from(ckpt, state)
        weights, wmeta = R.read_tensors(ckpt.files[R.MODEL], ckpt.name(R.MODEL), expected=self.model)
        saved_layers = wmeta.get("deltagrad.layers")
        if saved_layers is not None:
            problem = _layers_difference(saved_layers, self.cfg["model"]["layers"])
            if problem:
                raise CheckpointError(f"{ckpt.name(R.MODEL)} describes another model than {R.CONFIG}: {problem}")
        self.model.load_state_dict(weights)
        if weights_only:
            return ckpt
        arrays, _ = R.read_tensors(ckpt.files[R.OPTIMIZER], ckpt.name(R.OPTIMIZER))
        history = R.parse_metric_lines(ckpt)
        where = ckpt.name(R.STATE)
        try:
            restored = state_from_flat(arrays, state["state"])
            _check_like(self.optimizer.state_dict()["param_groups"], restored["optimizer"]["param_groups"],
                        "optimizer.param_groups")
            self.optimizer.load_state_dict(restored["optimizer"])
            if self.scheduler is not None:
                _check_like(self.scheduler.state_dict(), restored["scheduler"], "scheduler")
                self.scheduler.load_state_dict(restored["scheduler"])
            dg_random.set_rng_state(state["rng"]["global"])
            self.loader_rng.bit_generator.state = state["rng"]["loader"]
        except _BadValue as e:
            raise CheckpointError(f"{where}: {e}") from None
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CheckpointError(f"{where}: cannot restore the training state ({type(e).__name__}: {e})") from None
        self.epoch, self.step = state["epoch"], state["step"]
        es = state["early_stopping"]
        best = es["best_val_loss"]
        self.best_val_loss = None if best is None else float(best)  # "nan"/"inf" are stored as strings
        self.bad_epochs, self.stopped_early = es["bad_epochs"], es["stopped"]
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.history = history
        return ckpt

    def _check_built_from(self, ckpt: R.Checkpoint, state: dict[str, Any]) -> None:
        where = ckpt.name(R.STATE)
        try:
            saved_cfg = check_config(state["config"], {"__file__": where})
        except ConfigError as e:
            raise CheckpointError(f"{where}: the recorded config is not valid: {e}") from None
        problem = R.config_difference(json.loads(R.dumps_json(saved_cfg)), json.loads(R.dumps_json(self.cfg)))
        if problem:
            raise CheckpointError(f"{ckpt.run / R.CONFIG} is not what the run was built from: {problem}; restore it, "
                                  f"or start a new run from it with --config {ckpt.run / R.CONFIG} --out NEW_DIR")
        saved, now = state["data"], self.data_fingerprint
        if saved.get("sha256") != now["sha256"]:
            sizes = "" if saved.get("examples") == now["examples"] else (
                f"; train/validation/test examples {saved.get('examples')} then, {now['examples']} now")
            raise CheckpointError(f"data set {self.cfg['data']['dataset']!r} is not the one the run was trained on "
                                  f"(its fingerprint changed{sizes}); the run cannot continue or be evaluated on it")


class _BadValue(ValueError):
    pass


def _check_like(fresh: Any, loaded: Any, path: str) -> None:
    """``loaded`` (read from a file) must have the form of ``fresh`` (what this deltagrad makes), with numbers
    where numbers are, and learning rates and other settings within the ranges the flags allow."""
    if isinstance(fresh, dict):
        if not isinstance(loaded, dict) or set(loaded) != set(fresh):
            raise _BadValue(f"{path} must be a table with the keys {sorted(fresh)}, got {R._show(loaded)}")
        for k in fresh:
            _check_like(fresh[k], loaded[k], f"{path}.{k}")
        return
    if isinstance(fresh, (list, tuple)):
        if not isinstance(loaded, (list, tuple)) or len(loaded) != len(fresh):
            raise _BadValue(f"{path} must be a list of {len(fresh)}, got {R._show(loaded)}")
        for i, (f, v) in enumerate(zip(fresh, loaded)):
            _check_like(f, v, f"{path}[{i}]")
        return
    key = path.rsplit(".", 1)[-1].split("[")[0]
    if isinstance(fresh, bool) or fresh is None or isinstance(fresh, str):
        if type(loaded) is not type(fresh) and not (fresh is None and R._is_number(loaded)):
            raise _BadValue(f"{path} must be {R._show(fresh)}-like, got {R._show(loaded)}")
        return
    if not R._is_number(loaded):
        raise _BadValue(f"{path} must be a number, got {R._show(loaded)}")
    check = FILE_VALUE_CHECKS.get(key)
    if check is not None:
        try:
            check(loaded)
        except ValueError as e:
            raise _BadValue(f"{path} {e}, got {R._show(loaded)}") from None
    elif isinstance(fresh, float) and math.isfinite(fresh) and not math.isfinite(loaded):
        raise _BadValue(f"{path} must be a finite number, got {R._show(loaded)}")


def _layers_difference(saved_json: str, layers: list[dict[str, Any]]) -> str | None:
    try:
        saved = json.loads(saved_json)
    except (ValueError, RecursionError):
        return "its layer description is not valid JSON"
    if not isinstance(saved, list):
        return "its layer description is not a list"
    for i, (a, b) in enumerate(zip(saved, layers)):
        if a != json.loads(json.dumps(b)):
            return f"layer {i} is {R._show(a)} there but {R._show(b)} in {R.CONFIG}"
    if len(saved) != len(layers):
        return f"{len(saved)} layers there, {len(layers)} in {R.CONFIG}"
    return None
