"""Parameter initialization: fill a tensor in place from a chosen distribution (``torch.nn.init``).

Why the scale matters (lecture notes ``seeds/004_9c4cb9f1c3355601.txt``, "Parameter Initialization"):
the backward signal is dC/dz(m) = (W(m+1)ᵀ dC/dz(m+1)) ∘ da(m)/dz(m), a product of one weight matrix per
layer, so badly scaled weights make gradients vanish or explode. For o = Σᵢ wᵢ xᵢ with xᵢ ~ N(0, 1) and
wᵢ ~ N(0, σ²), Var[o] = n_in σ². Keeping forward activations at unit variance needs n_in σ² = 1; keeping
backward gradients there needs n_out σ² = 1. Both hold only if n_in = n_out, so Glorot/Xavier averages
them: σ² = 2 / (n_in + n_out). He/Kaiming keeps only one side and corrects for the nonlinearity with a
gain: σ² = gain² / fan (ReLU halves the variance, so gain² = 2).

Every function writes in place without recording (as under ``no_grad``), keeps the tensor's dtype, draws
from ``deltagrad.random.default_generator()`` unless a NumPy ``generator`` is given, and returns the tensor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deltagrad import backend
from deltagrad.random import default_generator
from deltagrad.tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "zeros_", "ones_", "eye_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_"]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activations' variance after ``nonlinearity`` (PyTorch's values).

    ===================  ==============================
    linear, conv*d       1
    sigmoid              1
    tanh                 5/3
    relu                 √2
    leaky_relu           √(2 / (1 + negative_slope²))  (``param``, default 0.01)
    selu                 3/4
    ===================  ==============================

    >>> calculate_gain("relu")
    1.4142135623730951
    """
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}; expected one of linear, conv1d, conv2d, "
                     "conv3d, conv_transpose1d/2d/3d, sigmoid, tanh, relu, leaky_relu, selu")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out as PyTorch's: (out, in) or (out, in, *kernel).

    fan_in = in · receptive field, fan_out = out · receptive field, where the receptive field is the
    product of the kernel sizes (1 for Linear).
    """
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
                         f"(shape {tuple(shape)})")
    receptive = 1
    for n in shape[2:]:
        receptive *= int(n)
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} is not supported; use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check(tensor: Any, name: str, floating: bool = True) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} needs a deltagrad Tensor, got {type(tensor).__name__}")
    if floating and not backend.is_floating(tensor.dtype):
        raise TypeError(f"{name} needs a floating-point tensor, got dtype {tensor.dtype}")


def _write(tensor: Tensor, values: Any) -> Tensor:
    """Copy ``values`` into ``tensor`` in place (converted to its dtype); never recorded."""
    np.copyto(tensor.data, values, casting="unsafe")
    tensor._version[0] += 1
    return tensor


def _gen(generator: np.random.Generator | None) -> np.random.Generator:
    return default_generator() if generator is None else generator


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: np.random.Generator | None = None) -> Tensor:
    """Fill with samples of U(a, b):  mean (a + b)/2, variance (b − a)²/12.

    >>> w = uniform_(deltagrad.empty(3, 5), -0.1, 0.1)
    """
    _check(tensor, "uniform_")
    return _write(tensor, _gen(generator).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None) -> Tensor:
    """Fill with samples of N(mean, std²).

    >>> w = normal_(deltagrad.empty(3, 5), std=0.02)
    """
    _check(tensor, "normal_")
    return _write(tensor, _gen(generator).normal(mean, std, size=tensor.shape))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: np.random.Generator | None = None) -> Tensor:
    """Fill with samples of N(mean, std²) restricted to [a, b] (values outside are redrawn).

    >>> w = trunc_normal_(deltagrad.empty(3, 5), std=0.02, a=-0.04, b=0.04)
    """
    _check(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_ needs a < b, got a={a}, b={b}")
    mass = 0.5 * (math.erf((b - mean) / (std * math.sqrt(2))) - math.erf((a - mean) / (std * math.sqrt(2))))
    if mass < 1e-4:
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] holds only {mass:.2e} of N({mean}, {std}²); "
                         "the interval is too far from the mean")
    gen = _gen(generator)
    out = gen.normal(mean, std, size=tensor.shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = gen.normal(mean, std, size=int(bad.sum()))
        bad = (out < a) | (out > b)
    return _write(tensor, out)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    _check(tensor, "constant_", floating=False)
    return _write(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0 (the default for biases of normalization layers)."""
    return constant_(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal): the layer starts as x_out = x_in."""
    _check(tensor, "eye_", floating=False)
    if tensor.ndim != 2:
        raise ValueError(f"eye_ needs a 2-D tensor, got shape {tuple(tensor.shape)}")
    return _write(tensor, np.eye(*tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot/Xavier uniform: U(−a, a) with a = gain · √(6 / (fan_in + fan_out)).

    Its variance a²/3 = gain² · 2 / (fan_in + fan_out) is the compromise between n_in σ² = 1 (forward)
    and n_out σ² = 1 (backward) derived in the notes (``seeds/004_9c4cb9f1c3355601.txt``).

    >>> w = xavier_uniform_(deltagrad.empty(300, 100))    # a = √(6/400) ≈ 0.122
    """
    _check(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot/Xavier normal: N(0, σ²) with σ = gain · √(2 / (fan_in + fan_out)).

    The notes' derivation (``seeds/004_9c4cb9f1c3355601.txt``): Var[o] = n_in σ² forward and n_out σ²
    backward; averaging the two conditions gives (n_in σ² + n_out σ²)/2 = 1, i.e. σ = √(2/(n_in + n_out)).

    >>> w = xavier_normal_(deltagrad.empty(300, 100))     # σ = √(2/400) ≈ 0.0707
    """
    _check(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> Tensor:
    """He/Kaiming uniform: U(−bound, bound), bound = gain · √(3 / fan), gain = ``calculate_gain(nonlinearity, a)``.

    Variance gain² / fan: ``mode='fan_in'`` keeps the forward signal's variance, ``'fan_out'`` the backward
    one. Linear and Conv layers use ``a=√5`` by default, which gives bound = 1/√fan_in.

    >>> w = kaiming_uniform_(deltagrad.empty(64, 3, 3, 3), nonlinearity="relu")   # fan_in = 27
    """
    _check(tensor, "kaiming_uniform_")
    if tensor.numel() == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> Tensor:
    """He/Kaiming normal: N(0, σ²), σ = gain / √fan, gain = ``calculate_gain(nonlinearity, a)``.

    >>> w = kaiming_normal_(deltagrad.empty(256, 128), nonlinearity="relu")   # σ = √(2/128) = 0.125
    """
    _check(tensor, "kaiming_normal_")
    if tensor.numel() == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix times ``gain`` (the tensor seen as size(0) × rest).

    Q of the QR factorization of a Gaussian matrix, with signs fixed by R's diagonal so that Q is
    uniformly distributed. Multiplying by it preserves norms: signals neither vanish nor explode.

    >>> q = orthogonal_(deltagrad.empty(4, 4));  # q @ q.T ≈ I
    """
    _check(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _gen(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _write(tensor, gain * q.reshape(tensor.shape))
