"""Run configuration: defaults, a TOML file, command-line overrides, checks, and the resolved form.

A config is a dict of five tables (TOML sections)::

    [data]       dataset, target (CSV), task, normalize; resolved: mean, std, input_shape, num_outputs, classes
    [model]      name (mlp, cnn, custom) and its options, or a layer list; resolved: layers
    [optimizer]  name (sgd, adam, adamw, rmsprop, adagrad) and PyTorch's arguments
    [scheduler]  name (none, step, exponential, cosine, plateau) and its arguments
    [train]      epochs, batch_size, seed, clip_grad_norm, patience (early stopping; 0 = off)

``check_config`` fills the defaults of the chosen optimizer, schedule and architecture and checks every
value, raising a one-line ``ConfigError`` that names the setting and where it came from (the flag or the
file). Unknown settings are errors, so a typo is never silently ignored.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deltagrad.train.errors import ConfigError

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"dataset": "digits", "task": "auto", "normalize": True},
    "model": {"name": "mlp"},
    "optimizer": {"name": "sgd"},
    "scheduler": {"name": "step"},
    "train": {"epochs": 30, "batch_size": 32, "seed": 0, "clip_grad_norm": 0.0, "patience": 0},
}

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")
INITS = ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")

MODELS: dict[str, dict[str, Any]] = {  # architecture: its options and their defaults
    "mlp": {"hidden": [256], "activation": "relu", "dropout": 0.0, "batch_norm": False, "init": "default"},
    "cnn": {"channels": [32, 64], "kernel_size": 3, "hidden": [128], "activation": "relu", "dropout": 0.3,
            "batch_norm": False, "init": "default"},
    "custom": {"init": "default"},
}

OPTIMIZERS: dict[str, dict[str, Any]] = {  # name: PyTorch's arguments, with deltagrad's default values
    "sgd": {"lr": 0.05, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adam": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
    "adamw": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
    "rmsprop": {"lr": 1e-3, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    "adagrad": {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10},
}

SCHEDULERS: dict[str, dict[str, Any]] = {  # stepped once per epoch; none depends on the number of epochs
    "none": {},
    "step": {"step_size": 10, "gamma": 0.3},
    "exponential": {"gamma": 0.95},
    "cosine": {"T_max": None, "eta_min": 0.0},  # T_max: the run's epochs when it starts, then fixed
    "plateau": {"factor": 0.1, "patience": 5},
}

# which flag sets which setting, for messages ("--lr must be ...")
FLAGS = {"data.dataset": "--dataset", "data.target": "--target", "model.name": "--model",
         "train.epochs": "--epochs", "train.batch_size": "--batch-size", "optimizer.lr": "--lr",
         "optimizer.name": "--optimizer", "train.seed": "--seed"}


# -- value checks: each returns the value (normalized) or raises with a phrase saying what is expected ------------
class _Bad(Exception):
    pass


def _number(v: Any, want: str = "must be a number") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(want)
    return float(v)


def _integer(v: Any, want: str) -> int:
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
        raise _Bad(want)
    return int(v)


def pos_float(v: Any) -> float:
    want = "must be a finite number > 0"
    x = _number(v, want)
    if not (math.isfinite(x) and x > 0):
        raise _Bad(want)
    return x


def nonneg_float(v: Any) -> float:
    want = "must be a finite number >= 0"
    x = _number(v, want)
    if not (math.isfinite(x) and x >= 0):
        raise _Bad(want)
    return x


def unit_float(v: Any) -> float:
    want = "must be a number in [0, 1)"
    x = _number(v, want)
    if not 0 <= x < 1:
        raise _Bad(want)
    return x


def pos_int(v: Any) -> int:
    want = "must be a whole number >= 1"
    if _integer(v, want) < 1:
        raise _Bad(want)
    return int(v)


def nonneg_int(v: Any) -> int:
    want = "must be a whole number >= 0"
    if _integer(v, want) < 0:
        raise _Bad(want)
    return int(v)


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad("must be true or false")
    return v


def string(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad("must be a non-empty string")
    return v


def choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise _Bad(f"must be one of {', '.join(options)}")
        return v
    return check


def int_list(minimum: int) -> Callable[[Any], list[int]]:
    def check(v: Any) -> list[int]:
        if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v) \
                or len(v) < minimum:
            raise _Bad("must be a list of whole numbers >= 1" + (" (at least one)" if minimum else ""))
        return list(v)
    return check


def betas(v: Any) -> list[float]:
    if not isinstance(v, list) or len(v) != 2:
        raise _Bad("must be a list of two numbers in [0, 1)")
    return [unit_float(x) for x in v]


def target(v: Any) -> str | int:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise _Bad("must be a column name or index")
    return v


def stats(v: Any) -> float | list[float]:
    want = "must be a finite number or a list of finite numbers"
    values = [_number(x, want) for x in v] if isinstance(v, list) else [_number(v, want)]
    if not all(math.isfinite(x) for x in values):
        raise _Bad(want)
    return values if isinstance(v, list) else values[0]


def anything(v: Any) -> Any:
    return v


CHECKS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "data": {"dataset": string, "target": target, "task": choice("auto", "classification", "regression"),
             "normalize": boolean, "mean": stats, "std": stats, "input_shape": int_list(0),
             "num_outputs": pos_int, "classes": anything, "description": anything},
    "model": {"name": choice(*MODELS), "hidden": int_list(0), "channels": int_list(1), "kernel_size": pos_int,
              "activation": choice(*ACTIVATIONS), "dropout": unit_float, "batch_norm": boolean,
              "init": choice(*INITS), "layers": anything},
    "optimizer": {"name": choice(*OPTIMIZERS), "lr": pos_float, "momentum": nonneg_float,
                  "dampening": nonneg_float, "weight_decay": nonneg_float, "nesterov": boolean, "betas": betas,
                  "eps": pos_float, "amsgrad": boolean, "alpha": unit_float, "centered": boolean,
                  "lr_decay": nonneg_float},
    "scheduler": {"name": choice(*SCHEDULERS), "step_size": pos_int, "gamma": pos_float, "T_max": pos_int,
                  "eta_min": nonneg_float, "factor": unit_float, "patience": nonneg_int},
    "train": {"epochs": nonneg_int, "batch_size": pos_int, "seed": nonneg_int, "clip_grad_norm": nonneg_float,
              "patience": nonneg_int},
}


def out_of_range(value: float, dtype: Any = np.float32) -> str | None:
    """What goes wrong with the non-zero setting ``value`` once it is a number of ``dtype`` (the model's): it
    underflows to 0, is subnormal (it has lost precision and its reciprocal overflows), or overflows to
    infinity; ``None`` when it is a normal number of ``dtype``.

    >>> print(out_of_range(1e-300))
    underflows to 0 in float32 (the model's dtype); the smallest allowed value is 1.1754944e-38
    """
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    with np.errstate(over="ignore", under="ignore"):
        x = abs(dtype.type(value))
    where = f"in {dtype.name} (the model's dtype)"
    if not np.isfinite(x):
        return f"overflows to infinity {where}; the largest allowed value is {info.max:.8g}"
    if x == 0:
        return f"underflows to 0 {where}; the smallest allowed value is {info.tiny:.8g}"
    if x < info.tiny:
        return f"is subnormal {where}; the smallest allowed value is {info.tiny:.8g}"
    return None


def model_dtype(model_cfg: Mapping[str, Any]) -> np.dtype:
    """The floating dtype of a model's parameters: float32 unless a layer list names another ``dtype`` (with
    several, the one of least range decides what a setting must fit in)."""
    found = []
    for spec in model_cfg.get("layers") or []:
        if isinstance(spec, Mapping) and spec.get("dtype") is not None:
            try:
                found.append(np.dtype(spec["dtype"]))
            except TypeError:  # not a dtype: building the layer reports it
                continue
    floats = [d for d in found if d.kind == "f"] or [np.dtype(np.float32)]
    return max(floats, key=lambda d: np.finfo(d).tiny)


def _check_numerics(cfg: dict[str, Any], sources: Mapping[str, str]) -> None:
    """Refuse settings that make the inputs non-finite or that vanish in the model's dtype."""
    d = cfg["data"]
    given = [k for k in ("mean", "std") if d.get(k) is not None]
    if len(given) == 1:
        other = "std" if given == ["mean"] else "mean"
        raise ConfigError(f"{_where('data.' + given[0], sources)} is given without data.{other}: normalization "
                          "needs both (leave both out and deltagrad computes them from the training examples)")
    if given:
        mean, std = d["mean"], d["std"]
        if isinstance(mean, list) and isinstance(std, list) and len(mean) != len(std):
            raise ConfigError(f"{_where('data.std', sources)} has {len(std)} values but data.mean has {len(mean)}")
        for k, s in enumerate(std if isinstance(std, list) else [std]):
            problem = "is not > 0" if s <= 0 else out_of_range(s)
            if problem:
                at = f" (feature {k})" if isinstance(std, list) else ""
                raise ConfigError(f"{_where('data.std', sources)} holds {s:g}{at}, which {problem}: inputs are "
                                  "divided by the std, so they would become infinite or NaN (a constant feature "
                                  "needs no std: leave data.mean and data.std out and deltagrad gives it std 1)")
    dtype = model_dtype(cfg["model"])
    for section in ("optimizer", "scheduler", "train"):
        for key, v in cfg[section].items():
            if CHECKS[section].get(key) in (pos_float, nonneg_float) and isinstance(v, float) and v != 0:
                problem = out_of_range(v, dtype)
                if problem:
                    raise ConfigError(f"{_where(f'{section}.{key}', sources)} is {v:g}, which {problem}")


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``override``'s tables merged in key by key."""
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    section, key = path.split(".")
    doc.setdefault(section, {})[key] = value


def _where(path: str, sources: Mapping[str, str]) -> str:
    src = sources.get(path)
    if src is None:
        return path
    return src if src.startswith("--") else f"{path} in {src}"


def _describe(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else f"{v}"


def check_config(doc: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Fill defaults and check every setting of ``doc``; return the completed config.

    ``sources`` maps ``"section.key"`` to where the value came from (``"--lr"`` or a file name), for messages.
    The architecture's, optimizer's and schedule's own defaults are filled after ``name`` is known, so
    switching ``--optimizer adam`` gets Adam's default ``lr`` unless one is given.
    """
    sources = dict(sources or {})
    if not isinstance(doc, Mapping):
        raise ConfigError("a config must be a table of sections")
    for section, table in doc.items():
        if section not in CHECKS:
            where = f" in {sources['__file__']}" if "__file__" in sources else ""
            raise ConfigError(f"unknown config section [{section}]{where} (sections: {', '.join(CHECKS)})")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{_where(section, sources)} must be a table ([{section}])")
    cfg = merge(DEFAULTS, doc)
    model = cfg["model"]
    if "layers" in doc.get("model", {}) and "name" not in doc.get("model", {}):
        model["name"] = "custom"
    families = {"model": MODELS, "optimizer": OPTIMIZERS, "scheduler": SCHEDULERS}
    for section, table in cfg.items():
        if section in families:
            name = table.get("name")
            try:
                choice(*families[section])(name)
            except _Bad as e:
                raise ConfigError(f"{_where(section + '.name', sources)} {e}, got {_describe(name)}") from None
            allowed = {"name", *families[section][name]} | ({"layers"} if section == "model" else set())
            for k in table:
                if k not in allowed:
                    raise ConfigError(f"{_where(f'{section}.{k}', sources)}: unknown setting for {section} "
                                      f"{name!r} (its settings: {', '.join(sorted(allowed))})")
            cfg[section] = {"name": name, **families[section][name], **table}
    for section, table in cfg.items():
        checks = CHECKS[section]
        for k, v in list(table.items()):
            if k not in checks:
                raise ConfigError(f"{_where(f'{section}.{k}', sources)}: unknown setting "
                                  f"(settings of [{section}]: {', '.join(checks)})")
            if v is None:
                continue
            try:
                table[k] = checks[k](v)
            except _Bad as e:
                raise ConfigError(f"{_where(f'{section}.{k}', sources)} {e}, got {_describe(v)}") from None
    if cfg["model"]["name"] == "custom" and not cfg["model"].get("layers"):
        raise ConfigError(f"{_where('model.name', sources)}: a custom model needs a layer list (model.layers)")
    opt = cfg["optimizer"]
    if opt.get("nesterov") and (opt.get("momentum", 0) <= 0 or opt.get("dampening", 0) != 0):
        raise ConfigError(f"{_where('optimizer.nesterov', sources)}: Nesterov momentum needs momentum > 0 "
                          "and dampening 0")
    _check_numerics(cfg, sources)
    if cfg["scheduler"]["name"] == "cosine" and cfg["scheduler"].get("T_max") is None:
        cfg["scheduler"]["T_max"] = max(cfg["train"]["epochs"], 1)
    return cfg


def _value_check(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(v: Any) -> Any:
        try:
            return check(v)
        except _Bad as e:
            raise ValueError(str(e)) from None
    return run


def _last_epoch(v: Any) -> int:
    if _integer(v, "must be a whole number >= -1") < -1:
        raise _Bad("must be a whole number >= -1")
    return int(v)


#: the rules for settings read back from a checkpoint's optimizer and schedule state, by key (a list's rule
#: applies to each of its items): the flags' own rules, except that a scheduled learning rate may have decayed to 0
FILE_VALUE_CHECKS: dict[str, Callable[[Any], Any]] = {
    k: _value_check(f) for k, f in {**CHECKS["optimizer"], **CHECKS["scheduler"], "lr": nonneg_float,
                                    "initial_lr": pos_float, "base_lrs": pos_float, "_last_lr": nonneg_float,
                                    "params": nonneg_int, "last_epoch": _last_epoch, "_step_count": nonneg_int,
                                    "betas": unit_float}.items()
    if k != "name"}
