"""Small helpers shared by the op files."""

from __future__ import annotations

from typing import Any

import numpy as np

from deltagrad.tensor import Tensor


def const(x: Any) -> Any:
    """The values of ``x`` as a plain array: for masks and signs, whose derivative is zero."""
    return x.data if isinstance(x, Tensor) else x


def size_args(sizes: tuple) -> tuple[int, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch's size arguments."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    return tuple(int(s) for s in sizes)


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Float64 normal samples for an op's ``examples``."""
    return rng.standard_normal(shape)


def normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """A non-negative axis, or an IndexError naming the dimension and the rank."""
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{name} {dim} is out of range for a tensor of {ndim} dimensions")
    return dim % max(ndim, 1)
