"""Small helpers shared by the op files, and PyTorch's type promotion for the elementwise ops."""

from __future__ import annotations

from typing import Any

import numpy as np

from deltagrad import backend
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


# ---- type promotion: PyTorch's rules (the same dtype as torch for every pair, tensor or scalar) ----------------
#
# Operands rank by how much say their dtype has: tensors with dimensions, then 0-d tensors (and 0-d arrays),
# then numbers (Python and NumPy scalars, whose dtype is only their category: bool, int64, or the default float;
# PyTorch takes a NumPy bool for a float). A lower rank decides only where it brings a higher category
# (bool < integer < floating): float32 · 2.5, float32 · np.float64(2), float32 · a 0-d float64 tensor are all
# float32; int32 · 2.5 is float32 (the default float), int32 · a 0-d float64 tensor float64.

_NUMBERS = frozenset((bool, int, float))


def promote_types(a: np.dtype | None, b: np.dtype | None) -> np.dtype | None:
    """The smallest dtype holding both (torch.promote_types): a float with an integer is that float."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    fa, fb = a.kind == "f", b.kind == "f"
    if fa != fb:
        return a if fa else b
    return np.promote_types(a, b)


def _number_dtype(x: Any) -> np.dtype:
    if isinstance(x, (bool, np.bool_)):
        return backend.bool_ if isinstance(x, bool) else backend.default_float  # torch reads np.bool_ as a float
    if isinstance(x, (int, np.integer)):
        return backend.int64
    if isinstance(x, (float, np.floating)):
        return backend.default_float
    raise TypeError(f"unsupported operand of type {type(x).__name__}: use a tensor, an array or a number")


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """The lower rank's dtype counts only where it brings a higher category (c10's combine_categories)."""
    if higher is None:
        return lower
    if higher.kind == "f":
        return higher
    if higher == backend.bool_ or (lower is not None and lower.kind == "f"):
        return promote_types(higher, lower)
    return higher


def result_type(*operands: Any) -> np.dtype:
    """The dtype PyTorch gives ``a op b`` for arrays (as tensors) and numbers (``torch.result_type``)."""
    dims = zero = number = None
    for x in operands:
        if isinstance(x, Tensor):
            x = x.data
        if isinstance(x, np.ndarray):
            if x.ndim:
                dims = promote_types(dims, x.dtype)
            else:
                zero = promote_types(zero, x.dtype)
        else:
            number = promote_types(number, _number_dtype(x))
    return _combine(dims, _combine(zero, number))


def _to(x: Any, dtype: np.dtype) -> Any:
    if isinstance(x, np.ndarray):
        return x if x.dtype == dtype else x.astype(dtype)
    # a number: NumPy keeps the dtype of the array it meets, as long as it is a Python number
    return x.item() if isinstance(x, np.generic) else x


def promote(a: Any, b: Any, true_divide: bool = False) -> tuple[Any, Any]:
    """``a`` and ``b`` (arrays or numbers) made such that NumPy computes ``a op b`` in PyTorch's dtype; with
    ``true_divide`` integers divide to the default float (``torch.div``).

    >>> promote(np.ones(2, np.int32), 2.5)[0].dtype   # float32
    """
    if b.__class__ in _NUMBERS and a.__class__ is np.ndarray and a.dtype.kind == "f":  # x * 2.0: as it is
        return a, b
    if a.__class__ in _NUMBERS and b.__class__ is np.ndarray and b.dtype.kind == "f":
        return a, b
    dtype = result_type(a, b)
    if true_divide and dtype.kind != "f":
        dtype = backend.default_float
    return _to(a, dtype), _to(b, dtype)
