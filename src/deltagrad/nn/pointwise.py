"""``Pointwise``: the notes' pointwise module with its bias inside the nonlinearity, x_out_i = h(x_in_i + b_i)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deltagrad import creation
from deltagrad.nn import functional as F
from deltagrad.nn import init
from deltagrad.nn.module import Module, check_device
from deltagrad.nn.parameter import Parameter
from deltagrad.tensor import Tensor

# the activations a layer list (TOML) can name
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu, "leaky_relu": F.leaky_relu, "identity": lambda z: z,
}


class Pointwise(Module):
    """The notes' pointwise function: x_out_i = h(x_in_i + b_i), one learned bias b_i per feature.

    ``activation`` (the notes' h) is an activation module (``nn.Tanh()``), a function of a tensor
    (``deltagrad.tanh``), or a name: ``"tanh"``, ``"sigmoid"``, ``"relu"``, ``"leaky_relu"``, ``"identity"``
    (the form a TOML layer list uses: ``{type = "Pointwise", activation = "tanh", num_features = 32}``).

    Shapes: input (N, C, *) or (C,), C = ``num_features`` (the features are dim 1 of a batch, as in
    BatchNorm); output the same shape; ``bias`` (C,), zeros at the start.

    Backprop, as the notes derive it with z_i = x_in_i + b_i (so ∂z_i/∂x_in_i = ∂z_i/∂b_i = 1):
        dL/dx_in_i = dL/dx_out_i · h'(x_in_i + b_i)
        dL/db_i    = dL/dx_out_i · h'(x_in_i + b_i)      (summed over the batch and positions)
    The module is that composition, h(x + b): h's own backward gives δ·h'(z) once, and the addition passes it
    to x_in as it is and to b summed over the broadcast axes, so any h that deltagrad can differentiate works,
    to any order.

    >>> layer = Pointwise("tanh", 3)
    >>> layer(deltagrad.zeros(2, 3)).shape
    (2, 3)
    """

    def __init__(self, activation: Module | Callable[[Tensor], Tensor] | str, num_features: int,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        check_device(device, "Pointwise")
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features <= 0:
            raise ValueError(f"Pointwise: num_features must be a positive int, got {num_features!r}")
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(f"Pointwise: unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)}; "
                                 "or pass a module or a function)")
            self.activation_name = activation
            self.h = ACTIVATIONS[activation]
        elif callable(activation):
            # a module is registered as a child, so any parameters it has are trained and saved with the layer
            self.activation_name = type(activation).__name__ if isinstance(activation, Module) else \
                getattr(activation, "__name__", type(activation).__name__)
            self.h = activation
        else:
            raise TypeError(f"Pointwise: activation must be a module, a function or a name, not "
                            f"{type(activation).__name__}")
        self.num_features = num_features
        self.bias = Parameter(creation.empty(num_features, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """b = 0: the layer starts as h itself."""
        init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        dim = 0 if input.ndim == 1 else 1
        if input.ndim == 0 or input.shape[dim] != self.num_features:
            raise ValueError(f"Pointwise: input of shape {tuple(input.shape)} does not have "
                             f"num_features={self.num_features} features in dimension {dim}")
        b = self.bias if input.ndim <= 2 else self.bias.reshape((self.num_features,) + (1,) * (input.ndim - 2))
        return self.h(input + b)

    def extra_repr(self) -> str:
        return f"{self.activation_name}, num_features={self.num_features}"
