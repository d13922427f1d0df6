"""Tensor constructors with PyTorch's names: tensor, zeros, ones, full, arange, randn, rand, ...

Floats made from Python data are float32 (the default dtype); NumPy arrays keep their dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltagrad import backend
from deltagrad.random import default_generator
from deltagrad.tensor import Tensor


def _shape(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"sizes must be non-negative integers, got {size}")
    return tuple(int(s) for s in size)


def _float_dtype(dtype: Any) -> np.dtype:
    return backend.default_float if dtype is None else np.dtype(dtype)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a list, a number, an array or a Tensor)."""
    if isinstance(data, Tensor):
        data = data.data
    arr = backend.as_array(data, dtype)
    if arr is data:
        arr = arr.copy()
    return Tensor(arr, requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """A tensor sharing ``data``'s memory where it can (no copy for a NumPy array of the right dtype)."""
    return data if isinstance(data, Tensor) and dtype is None else Tensor(data, dtype=dtype)


def from_numpy(a: np.ndarray) -> Tensor:
    return Tensor(a)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(size), _float_dtype(dtype)), requires_grad=requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(size), _float_dtype(dtype)), requires_grad=requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = backend.as_array(fill_value).dtype
    return Tensor(np.full(_shape((size,)), fill_value, dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(t.shape, fill_value, dtype or t.dtype), requires_grad=requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Integers give int64 (as PyTorch); any float bound gives float32 unless ``dtype`` says otherwise."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange step must be non-zero")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.default_float
    return Tensor(np.arange(start, end, step).astype(dtype), requires_grad=requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.linspace(start, end, steps).astype(_float_dtype(dtype)), requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False,
          generator: np.random.Generator | None = None) -> Tensor:
    """Standard normal samples from the global generator (seed it with ``manual_seed``)."""
    g = generator or default_generator()
    return Tensor(g.standard_normal(_shape(size)).astype(_float_dtype(dtype)), requires_grad=requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False,
         generator: np.random.Generator | None = None) -> Tensor:
    """Uniform samples in [0, 1)."""
    g = generator or default_generator()
    return Tensor(g.random(_shape(size)).astype(_float_dtype(dtype)), requires_grad=requires_grad)


def randint(low: int, high: int | None = None, size: tuple = (), dtype: Any = None,
            generator: np.random.Generator | None = None) -> Tensor:
    if high is None:
        low, high = 0, low
    g = generator or default_generator()
    return Tensor(g.integers(low, high, _shape((size,))).astype(dtype or backend.int64))


def randperm(n: int, generator: np.random.Generator | None = None) -> Tensor:
    g = generator or default_generator()
    return Tensor(g.permutation(n).astype(backend.int64))
