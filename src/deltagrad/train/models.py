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

from deltagrad import nn
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
