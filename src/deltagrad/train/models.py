"""Models described by data: a named architecture with options, or a layer list, built as ``nn.Sequential``.

A layer is a dict ``{type = "Linear", in_features = 64, out_features = 256}``: ``type`` is the name of a
``deltagrad.nn`` layer and the other keys are its constructor's arguments (PyTorch's names). The layer
list, written into a run's ``config.toml``, is enough to rebuild the network without code, and the
state-dict keys (``"1.weight"``...) are PyTorch's for the same ``nn.Sequential``.

``mlp``:  [Flatten] → (Linear → [BatchNorm1d] → act → [Dropout]) per hidden size → Linear
``cnn``:  (Conv2d k×k, same padding → [BatchNorm2d] → act → MaxPool2d 2) per channel count → Flatten →
          [Dropout] → (Linear → act) per hidden size → Linear
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deltagrad import nn
from deltagrad import random as dg_random
from deltagrad.autograd import no_grad
from deltagrad.ops.conv import ntuple, padding_pairs
from deltagrad.tensor import Tensor
from deltagrad.train.config import out_of_range
from deltagrad.train.errors import ConfigError

LAYER_TYPES = ("Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "Flatten",
               "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Dropout", "BatchNorm1d", "BatchNorm2d", "Identity",
               "Pointwise")
_ACTIVATION = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU"}


def mlp_layers(input_shape: tuple[int, ...], num_outputs: int, hidden: list[int], activation: str = "relu",
               dropout: float = 0.0, batch_norm: bool = False) -> list[dict[str, Any]]:
    """The layer list of a multilayer perceptron from ``input_shape`` to ``num_outputs``."""
    layers: list[dict[str, Any]] = []
    if len(input_shape) != 1:
        layers.append({"type": "Flatten"})
    width = math.prod(input_shape)
    for h in hidden:
        layers.append({"type": "Linear", "in_features": width, "out_features": h})
        if batch_norm:
            layers.append({"type": "BatchNorm1d", "num_features": h})
        layers.append({"type": _ACTIVATION[activation]})
        if dropout > 0:
            layers.append({"type": "Dropout", "p": dropout})
        width = h
    layers.append({"type": "Linear", "in_features": width, "out_features": num_outputs})
    return layers


def cnn_layers(input_shape: tuple[int, ...], num_outputs: int, channels: list[int], kernel_size: int = 3,
               hidden: list[int] | None = None, activation: str = "relu", dropout: float = 0.0,
               batch_norm: bool = False) -> list[dict[str, Any]]:
    """The layer list of a small convolutional network for ``(C, H, W)`` images."""
    if len(input_shape) != 3:
        raise ConfigError(f"model 'cnn' needs images (channels × height × width inputs), but the data set's "
                          f"inputs have shape {tuple(input_shape)}; use --model mlp")
    c, h, w = input_shape
    layers: list[dict[str, Any]] = []
    for out in channels:
        layers.append({"type": "Conv2d", "in_channels": c, "out_channels": out, "kernel_size": kernel_size,
                       "padding": kernel_size // 2})
        h, w = h + 2 * (kernel_size // 2) - kernel_size + 1, w + 2 * (kernel_size // 2) - kernel_size + 1
        if batch_norm:
            layers.append({"type": "BatchNorm2d", "num_features": out})
        layers.append({"type": _ACTIVATION[activation]})
        if h >= 2 and w >= 2:
            layers.append({"type": "MaxPool2d", "kernel_size": 2})
            h, w = h // 2, w // 2
        c = out
    layers.append({"type": "Flatten"})
    if dropout > 0:
        layers.append({"type": "Dropout", "p": dropout})
    width = c * h * w
    for size in hidden or []:
        layers.append({"type": "Linear", "in_features": width, "out_features": size})
        layers.append({"type": _ACTIVATION[activation]})
        width = size
    layers.append({"type": "Linear", "in_features": width, "out_features": num_outputs})
    return layers


def architecture_layers(model_cfg: dict[str, Any], input_shape: tuple[int, ...], num_outputs: int
                        ) -> list[dict[str, Any]]:
    """The layer list that ``[model]`` describes: from its named architecture, or its own ``layers``."""
    name = model_cfg["name"]
    if name == "mlp":
        return mlp_layers(tuple(input_shape), num_outputs, model_cfg["hidden"], model_cfg["activation"],
                          model_cfg["dropout"], model_cfg["batch_norm"])
    if name == "cnn":
        return cnn_layers(tuple(input_shape), num_outputs, model_cfg["channels"], model_cfg["kernel_size"],
                          model_cfg["hidden"], model_cfg["activation"], model_cfg["dropout"],
                          model_cfg["batch_norm"])
    return check_layers(model_cfg.get("layers"))


def check_layers(layers: Any) -> list[dict[str, Any]]:
    """Check the form of a layer list (types known, arguments plain values); return it."""
    if not isinstance(layers, list) or not layers:
        raise ConfigError("model.layers must be a non-empty list of tables like {type = \"Linear\", ...}")
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(f"model.layers[{i}] must be a table with a 'type', got {spec!r}")
        if spec["type"] not in LAYER_TYPES:
            raise ConfigError(f"model.layers[{i}]: unknown layer type {spec['type']!r} "
                              f"(known: {', '.join(LAYER_TYPES)})")
    return layers


def _arg(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def build_model(layers: list[dict[str, Any]]) -> nn.Sequential:
    """An ``nn.Sequential`` of the layers described (drawing initial weights from the global generator)."""
    modules = []
    for i, spec in enumerate(check_layers(layers)):
        kwargs = {k: _arg(v) for k, v in spec.items() if k != "type"}
        try:
            modules.append(getattr(nn, spec["type"])(**kwargs))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model.layers[{i}] ({spec['type']}): {e}") from None
    return nn.Sequential(*modules)


# -- shapes: a layer list checked against the data before a run folder is made ---------------------------------
_SAME_SHAPE = ("ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Dropout", "Identity")
_SPATIAL = {"Conv1d": 1, "Conv2d": 2, "MaxPool1d": 1, "MaxPool2d": 2, "AvgPool1d": 1, "AvgPool2d": 2}
_SIZES = {1: ("L",), 2: ("H", "W")}
_PROBE = 2  # examples in the trial batch: two, so that a layer that mixes the batch (BatchNorm) is exercised


def _fmt(shape: tuple[Any, ...]) -> str:
    """A shape as Python writes a tuple: ``(64,)``, ``(1, 8, 8)``, or with names: ``(1, H, W)``."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _by(sizes: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in sizes)


def _padding(pads: tuple[tuple[int, int], ...]) -> str:
    sides = {p for pair in pads for p in pair}
    return f"padding {sides.pop()}" if len(sides) == 1 else f"padding {pads} (before, after)"


def _misfit(m: nn.Module, t: str, shape: tuple[int, ...]) -> str | None:
    """What is wrong when layer ``m`` of type ``t`` gets one example of ``shape`` (the shape it needs, and what
    to change); ``None`` when it fits, or when no rule is written for ``t`` (the trial forward decides)."""
    needs = _needs(m, t, shape)
    if needs is None:
        return None
    if isinstance(needs, str):
        return needs
    return f" gets inputs of shape {_fmt(shape)} but needs {needs[0]}; {needs[1]}"


def _needs(m: nn.Module, t: str, shape: tuple[int, ...]) -> tuple[str, str] | str | None:
    if t == "Linear":
        n, flat = m.in_features, math.prod(shape)
        if shape and shape[-1] == n:  # as in PyTorch, Linear maps the last dimension (the final check sees the rest)
            return None
        if len(shape) > 1:
            return f"({n},) (in_features = {n})", ('add {type = "Flatten"} before it'
                                                   + ("" if flat == n else f" and set in_features = {flat}"))
        return f"({n},) (in_features = {n})", f"set in_features = {flat}"
    if t in _SPATIAL:
        nd = _SPATIAL[t]
        conv = t.startswith("Conv")
        if len(shape) != nd + 1:
            channels = m.in_channels if conv else "C"
            what = "channels × height × width" if nd == 2 else "channels × length"
            return _fmt((channels, *_SIZES[nd])), f"{t} takes examples of {what}"
        if conv and shape[0] != m.in_channels:
            return _fmt((m.in_channels, *shape[1:])), f"set in_channels = {shape[0]}"
        kernel = ntuple(m.kernel_size, nd, "kernel_size")
        dilation = ntuple(getattr(m, "dilation", 1), nd, "dilation")
        if conv:
            pads = padding_pairs(m.padding, nd, kernel, dilation, ntuple(m.stride, nd, "stride"))
        else:
            pads = tuple((p, p) for p in ntuple(m.padding, nd, "padding"))
        reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))  # the span of one window
        padded = tuple(s + a + b for s, (a, b) in zip(shape[1:], pads))
        if any(r > p for r, p in zip(reach, padded)):
            least = tuple(max(s, r - a - b) for s, r, (a, b) in zip(shape[1:], reach, pads))
            return (f"at least {_fmt((shape[0], *least))}",
                    f"its {_by(reach)} window is larger than the padded input {_by(padded)} ({_padding(pads)}); "
                    "use a smaller kernel_size or more padding, or fewer pooling layers before it")
        return None
    if t in ("BatchNorm1d", "BatchNorm2d"):
        n = m.num_features
        if t == "BatchNorm1d" and len(shape) not in (1, 2):
            return f"({n},) or ({n}, L)", "BatchNorm1d takes features or channels × length; use BatchNorm2d on images"
        if t == "BatchNorm2d" and len(shape) != 3:
            return _fmt((n, "H", "W")), "BatchNorm2d takes images (channels × height × width)"
        if shape[0] != n:
            return _fmt((n, *shape[1:])), f"set num_features = {shape[0]}"
        return None
    if t == "Flatten":
        nd = len(shape) + 1  # with the batch dimension
        start = m.start_dim + nd if m.start_dim < 0 else m.start_dim
        if start == 0:
            return ": start_dim = 0 would merge the examples of a batch into one; use start_dim = 1 (the default)"
    return None


def _check_eps(i: int, t: str, m: nn.Module) -> None:
    eps = getattr(m, "eps", None)
    if t.startswith("BatchNorm") and isinstance(eps, (int, float)):
        dtype = m.running_var.dtype if getattr(m, "running_var", None) is not None else np.dtype(np.float32)
        problem = "is not > 0" if eps <= 0 else out_of_range(eps, dtype)
        if problem:
            raise ConfigError(f"model.layers[{i}] ({t}): eps = {eps:g}, which {problem} (batch norm divides by "
                              "√(var + eps), and a constant channel has var 0)")


def check_shapes(layers: list[dict[str, Any]], input_shape: tuple[int, ...], num_outputs: int,
                 task: str = "classification") -> list[tuple[int, ...]]:
    """Follow one example's shape through ``layers`` from ``input_shape`` (without the batch dimension) and
    check that each layer takes what it gets and that the last gives ``(num_outputs,)``; return the shape
    after each layer. A misfit is a one-line ``ConfigError`` naming the layer and both shapes::

        model.layers[1] (Linear) gets inputs of shape (64,) but needs (60,) (in_features = 60); set in_features = 64

    Linear, Conv1d/2d, the pools, BatchNorm1d/2d and Flatten have rules of their own (in_features, channels,
    a kernel larger than the padded input, a missing Flatten); every layer, with a rule or without one (an
    activation, a layer type added later), then runs once on a zero batch of 2 examples, in eval mode and
    without gradients, and any error it raises is reported in the same form. The global random generator is
    left as it was (building the layers draws their initial weights).

    >>> check_shapes([{"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 10}], (1, 8, 8), 10)
    [(64,), (10,)]
    """
    state = dg_random.get_rng_state()
    try:
        model = build_model(layers)
    finally:
        dg_random.set_rng_state(state)
    model.eval()
    shape, shapes = tuple(int(s) for s in input_shape), []
    with no_grad():
        for i, (spec, m) in enumerate(zip(layers, model)):
            t = spec["type"]
            where = f"model.layers[{i}] ({t})"
            _check_eps(i, t, m)
            misfit = _misfit(m, t, shape)
            if misfit:
                raise ConfigError(where + misfit)
            try:
                out = m(Tensor._make(np.zeros((_PROBE, *shape), np.float32), None))
            except Exception as e:  # noqa: BLE001 - any failure of a layer on a legal batch is a misfit
                raise ConfigError(f"{where} cannot take inputs of shape {_fmt(shape)}: "
                                  f"{' '.join(str(e).split()) or type(e).__name__}") from None
            if not isinstance(out, Tensor) or out.ndim == 0 or out.shape[0] != _PROBE:
                got = _fmt(tuple(out.shape)) if isinstance(out, Tensor) else type(out).__name__
                raise ConfigError(f"{where} gives {got} for a batch of {_PROBE} examples of shape {_fmt(shape)}; "
                                  "a layer must keep the batch dimension first")
            shape = tuple(int(s) for s in out.shape[1:])
            shapes.append(shape)
    if shape != (num_outputs,):
        what = f"one score per class, {num_outputs} classes" if task == "classification" else \
            f"{num_outputs} regression target{'s' if num_outputs != 1 else ''}"
        last = f"model.layers[{len(layers) - 1}] ({layers[-1]['type']})"
        fix = (f"set out_features = {num_outputs} in the last Linear" if len(shape) == 1 else
               f'end with {{type = "Flatten"}} and a Linear with out_features = {num_outputs}')
        raise ConfigError(f"{last} gives outputs of shape {_fmt(shape)} per example, but the data set needs "
                          f"({num_outputs},) ({what}); {fix}")
    return shapes


def initialize(model: nn.Module, scheme: str, activation: str = "relu") -> None:
    """Re-draw the weights of every Linear/Conv layer with ``scheme`` (``"default"`` keeps PyTorch's
    initialization) and zero their biases. Kaiming uses the gain of ``activation``."""
    if scheme == "default":
        return
    fn = getattr(nn.init, scheme + "_")
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if scheme.startswith("kaiming"):
                nonlinearity = activation if activation in ("relu", "leaky_relu") else "linear"
                fn(module.weight, nonlinearity=nonlinearity)
            else:
                fn(module.weight, gain=nn.init.calculate_gain(activation))
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
