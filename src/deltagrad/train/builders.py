"""From a checked config to live objects: the data set, the resolved config, the optimizer and the schedule."""

from __future__ import annotations

import math
from typing import Any

from deltagrad import optim
from deltagrad.data import DataSplits, load_dataset
from deltagrad.data.sets import source_kind, split_summary
from deltagrad.optim import lr_scheduler
from deltagrad.train.errors import ConfigError
from deltagrad.train.models import architecture_layers, check_shapes

_OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
               "adagrad": optim.Adagrad}


def load_data(cfg: dict[str, Any]) -> DataSplits:
    """The data set of ``[data]``, normalized with the config's ``mean``/``std`` when it has them."""
    d = cfg["data"]
    if d.get("target") is not None and source_kind(d["dataset"]) != "csv":
        raise ConfigError(f"data.target (--target) applies to CSV files only, not to data set {d['dataset']!r}")
    return load_dataset(d["dataset"], target=d.get("target"), task=d["task"], normalize_inputs=d["normalize"],
                        mean=d.get("mean"), std=d.get("std"))


def resolve(cfg: dict[str, Any], data: DataSplits) -> dict[str, Any]:
    """Complete ``cfg`` with what the data decides: input shape, outputs, classes, normalization and the model's
    layer list. A layer list given together with a named architecture must be the one it builds.

    Everything that can be known before training is checked here, before a run folder is made: that each
    layer takes the shape it gets (``check_shapes``), and that the data set is large enough for what the
    config asks of it (early stopping and the plateau schedule need validation examples; batch norm on
    single values needs two examples per batch)."""
    d = cfg["data"]
    if d["task"] != "auto" and d["task"] != data.task:
        raise ConfigError(f"data.task is {d['task']!r}, but data set {d['dataset']!r} is a {data.task} data set")
    if d.get("input_shape") is not None and tuple(d["input_shape"]) != tuple(data.input_shape):
        raise ConfigError(f"data set {d['dataset']!r} gives inputs of shape {tuple(data.input_shape)}, but the "
                          f"config says {tuple(d['input_shape'])}")
    d.update(task=data.task, input_shape=list(data.input_shape), num_outputs=data.num_outputs,
             classes=list(data.classes), description=data.description)
    if data.mean is not None:
        d.update(mean=data.mean, std=data.std)
    m = cfg["model"]
    layers = architecture_layers(m, data.input_shape, data.num_outputs)
    if m["name"] != "custom" and m.get("layers") is not None and m["layers"] != layers:
        raise ConfigError(f"model.layers does not match model {m['name']!r} with its options; remove one of them "
                          "(a layer list alone is a custom model)")
    shapes = check_shapes(layers, data.input_shape, data.num_outputs, data.task)
    m["layers"] = layers
    _check_sizes(cfg, data, shapes)
    return cfg


def _check_sizes(cfg: dict[str, Any], data: DataSplits, shapes: list[tuple[int, ...]]) -> None:
    """The settings that a data set this small cannot serve, as one-line errors."""
    name, t = cfg["data"]["dataset"], cfg["train"]
    if len(data.val) == 0:
        watch = "train.patience (early stopping)" if t["patience"] else \
            "scheduler.name = 'plateau'" if cfg["scheduler"]["name"] == "plateau" else None
        if watch:
            raise ConfigError(f"{watch} watches the validation loss, but data set {name!r} has no validation "
                              f"examples ({split_summary(data)})")
    for i, spec in enumerate(cfg["model"]["layers"]):
        if spec["type"] not in ("BatchNorm1d", "BatchNorm2d"):
            continue
        per_example = math.prod((shapes[i - 1] if i else tuple(data.input_shape))[1:])  # values of a channel
        if per_example > 1:
            continue
        where = f"model.layers[{i}] ({spec['type']}) needs at least 2 examples per batch to normalize over"
        if t["batch_size"] < 2:
            raise ConfigError(f"{where}, but train.batch_size (--batch-size) is {t['batch_size']}")
        if len(data.train) < 2:
            raise ConfigError(f"{where}, but data set {name!r} has {len(data.train)} training example "
                              f"({split_summary(data)})")


def make_optimizer(opt_cfg: dict[str, Any], params: Any) -> optim.Optimizer:
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in opt_cfg.items() if k != "name"}
    return _OPTIMIZERS[opt_cfg["name"]](params, **kwargs)


def make_scheduler(sched_cfg: dict[str, Any], optimizer: optim.Optimizer) -> Any:
    """The schedule of ``[scheduler]`` (``None`` for ``none``); stepped once per epoch by the fit loop."""
    name = sched_cfg["name"]
    if name == "none":
        return None
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=sched_cfg["step_size"], gamma=sched_cfg["gamma"])
    if name == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, gamma=sched_cfg["gamma"])
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=sched_cfg["T_max"], eta_min=sched_cfg["eta_min"])
    return lr_scheduler.ReduceLROnPlateau(optimizer, factor=sched_cfg["factor"], patience=sched_cfg["patience"])
