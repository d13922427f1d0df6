"""Nonlinearities as modules: ReLU, LeakyReLU, Tanh, Sigmoid, Softmax, LogSoftmax (no parameters).

Each is a^(m) = σ(z^(m)) from the notes, applied elementwise (Softmax/LogSoftmax along ``dim``); its
backprop to input multiplies δ by σ'(z) (the Jacobian-vector product for the softmaxes).
"""

from __future__ import annotations

import warnings

from deltagrad.nn import functional as F
from deltagrad.nn.module import Module
from deltagrad.tensor import Tensor


class ReLU(Module):
    """y = max(0, x);  dL/dx = δ · [x > 0].

    ``inplace`` is accepted for PyTorch compatibility; the result is always a new tensor.

    >>> ReLU()(deltagrad.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope · x;  dL/dx = δ · (1 if x > 0 else negative_slope).

    >>> LeakyReLU(0.25)(deltagrad.tensor([-1.0, 2.0])).tolist()
    [-0.25, 2.0]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Tanh(Module):
    """y = tanh x;  dL/dx = δ · (1 − y²).

    >>> Tanh()(deltagrad.zeros(2)).tolist()
    [0.0, 0.0]
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    """y = 1 / (1 + e⁻ˣ);  dL/dx = δ · y (1 − y) (the notes' a(1 − a)).

    >>> Sigmoid()(deltagrad.zeros(1)).tolist()
    [0.5]
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


def _implicit_dim(ndim: int, name: str) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated; pass dim= explicitly",
                  UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """y_i = e^{x_i} / Σ_j e^{x_j} along ``dim`` (each slice sums to 1);  dL/dx = y ∘ (δ − Σ_j δ_j y_j).

    With ``dim=None`` PyTorch's legacy choice is made (0 for 0-, 1- and 3-D input, else 1) with a warning.

    >>> Softmax(dim=1)(deltagrad.zeros(2, 4)).tolist()[0]
    [0.25, 0.25, 0.25, 0.25]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        dim = self.dim if self.dim is not None else _implicit_dim(input.ndim, "softmax")
        return F.softmax(input, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """y_i = x_i − log Σ_j e^{x_j} along ``dim`` (computed stably);  dL/dx = δ − softmax(x) · Σ_j δ_j.

    >>> LogSoftmax(dim=-1)(deltagrad.zeros(1, 2)).exp().tolist()
    [[0.5, 0.5]]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        dim = self.dim if self.dim is not None else _implicit_dim(input.ndim, "log_softmax")
        return F.log_softmax(input, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
