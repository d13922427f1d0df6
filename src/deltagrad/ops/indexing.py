"""Indexing: ``x[...]`` with ints, slices, None, ``...``, integer arrays and boolean masks, as PyTorch, and
split/chunk/unbind/narrow/flip/index_select/gather built on it.

Basic indexing (ints, slices, None, ``...``) is a view of the input's memory; integer arrays and masks give
a copy. The backward of indexing adds the gradient into zeros at the indexed positions (repeated indices
accumulate); that op's own backward is indexing again, so gradients of gradients flow through both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deltagrad import backend
from deltagrad.autograd.function import Function, defop
from deltagrad.ops._util import normalize_dim, randn, size_args
from deltagrad.tensor import Tensor

__all__ = ["split", "chunk", "unbind", "narrow", "flip", "index_select", "gather"]

_BASIC = (int, np.integer, slice, type(None), type(Ellipsis))


def _int(v: Any) -> Any:
    return int(v.item()) if isinstance(v, Tensor) else v


def parse_index(index: Any, shape: tuple[int, ...]) -> tuple[tuple, bool]:
    """``index`` as a NumPy index tuple (Tensors unwrapped, masks as ``nonzero()``, bounds checked), and
    whether it is advanced (integer arrays or masks: the result is a copy) rather than basic (a view)."""
    items = list(index) if isinstance(index, tuple) else [index]
    used = 0
    advanced = False
    for k, it in enumerate(items):
        if isinstance(it, Tensor):
            it = it.data
        elif isinstance(it, (list, tuple, range)):
            it = np.asarray(it)
        elif isinstance(it, (bool, np.bool_)):
            it = np.asarray(it)
        elif isinstance(it, slice) and any(isinstance(v, Tensor) for v in (it.start, it.stop, it.step)):
            it = slice(_int(it.start), _int(it.stop), _int(it.step))
        if isinstance(it, np.ndarray):
            if it.dtype == np.bool_:
                used += it.ndim
            elif it.dtype.kind in "iu":
                used += 1
            else:
                raise IndexError(f"tensors used as indices must be long, int or bool tensors, not {it.dtype}")
            advanced = True
        elif isinstance(it, (int, np.integer, slice)):
            used += 1
        elif it is not None and it is not Ellipsis:
            raise TypeError(f"invalid index of type {type(it).__name__}: use ints, slices, None, ..., "
                            "or integer/bool tensors")
        items[k] = it
    ndim = len(shape)
    if sum(it is Ellipsis for it in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim} (shape {shape})")
    out: list[Any] = []
    d = 0
    for it in items:
        if it is Ellipsis:
            d += ndim - used
        elif isinstance(it, slice):
            d += 1
        elif isinstance(it, (int, np.integer)):
            if not -shape[d] <= it < shape[d]:
                raise IndexError(f"index {it} is out of bounds for dimension {d} with size {shape[d]}")
            it, d = int(it), d + 1
        elif isinstance(it, np.ndarray) and it.dtype == np.bool_ and it.ndim:
            if it.shape != shape[d:d + it.ndim]:
                raise IndexError(f"the shape of the mask {list(it.shape)} at index {d} does not match the shape "
                                 f"of the indexed tensor {list(shape)}")
            out.extend(it.nonzero())  # NumPy and PyTorch define a mask as its nonzero() positions
            d += it.ndim
            continue
        elif isinstance(it, np.ndarray) and it.dtype != np.bool_:
            if it.size and (it.min() < -shape[d] or it.max() >= shape[d]):
                bad = it.max() if it.max() >= shape[d] else it.min()
                raise IndexError(f"index {bad} is out of bounds for dimension {d} with size {shape[d]}")
            it, d = it.astype(np.intp, copy=False), d + 1
        out.append(it)
    if not advanced and not any(it is Ellipsis for it in out):
        out.append(Ellipsis)  # x[0, 1, ...] is a 0-d view, x[0, 1] a NumPy scalar copy
    return tuple(out), advanced


class GetItem(Function):
    """y = x[index], basic indexing (ints, slices of any step, None, ...): a view;  dx = g put into zeros

    >>> deltagrad.arange(6).reshape(2, 3)[1, ::2]   # tensor([3, 5])
    """

    inputs = ("x",)

    is_view = True

    def forward(ctx, x, index):
        ctx.shape, (ctx.index, advanced) = x.shape, parse_index(index, x.shape)
        if advanced and type(ctx) is GetItem:
            raise TypeError("getitem takes basic indices only; integer arrays and masks go through index()")
        return x[ctx.index]

    def backward(ctx, g):
        return getitem_backward(g, ctx.shape, ctx.index)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), (1, slice(None, None, 2))), {}),
                                       ((randn(r, 3, 4, 2), (Ellipsis, None, slice(1, 3), -1)), {}),
                                       ((randn(r, 5), slice(-4, None, 2)), {}), ((randn(r, 3, 2), (2, 0)), {})])


class Index(GetItem):
    """y = x[index] with integer arrays or boolean masks (a copy);  dx = g added into zeros at index,
    repeated indices accumulating

    >>> x = deltagrad.tensor([1.0, 2.0, 3.0]); x[[0, 0, 2]], x[x > 1]   # [1, 1, 3], [2, 3]
    """

    inputs = ("x", "index")
    reads = ((1,),)

    is_view = False

    def backward(ctx, g):
        ctx.args  # noqa: B018  the index is kept by reference: refuse it if it was changed in place (as PyTorch)
        return getitem_backward(g, ctx.shape, ctx.index)

    examples = staticmethod(lambda r: [((randn(r, 4, 3), np.array([0, 2, 0, 3])), {}),
                                       ((randn(r, 4, 3), (np.array([[0], [3]]), np.array([1, 1, 2]))), {}),
                                       ((randn(r, 4, 3), (slice(1, None), [2, 0, 2])), {}),
                                       ((randn(r, 3, 4), randn(r, 3, 4) > 0), {}),
                                       ((randn(r, 2, 3, 4), (Ellipsis, np.array([True, False, True, True]))), {})])


class GetItemBackward(Function):
    """y = zeros(shape) with g added at ``index`` (repeated positions accumulate): the VJP of x[index];
    its own backward is indexing: dg = dy[index]"""

    inputs = ("g",)

    def forward(ctx, g, shape, index):
        ctx.index, advanced = parse_index(index, tuple(shape))
        out = backend.zeros(tuple(shape), g.dtype)
        if advanced:
            backend.scatter_add(out, ctx.index, g)
        else:
            out[ctx.index] = g
        return out

    def backward(ctx, gg):
        return gg[ctx.index]

    examples = staticmethod(lambda r: [((randn(r, 2), (3, 2), (1,)), {}),
                                       ((randn(r, 4, 3), (4, 3), (np.array([0, 2, 0, 3]),)), {}),
                                       ((randn(r, 2, 2), (3, 4), (slice(None, None, 2), slice(1, 3))), {})])


_getitem = defop(GetItem, "getitem")
_index = defop(Index, "index")
getitem_backward = defop(GetItemBackward, "getitem_backward")


def _tensor_getitem(self: Tensor, index: Any) -> Tensor:
    basic = all(isinstance(i, _BASIC) and not isinstance(i, bool) for i in index) if isinstance(index, tuple) \
        else isinstance(index, _BASIC) and not isinstance(index, bool)
    return (_getitem if basic else _index)(self, index)


Tensor.__getitem__ = _tensor_getitem


def _along(input: Any, dim: int, index: Any) -> tuple:
    return (slice(None),) * normalize_dim(dim, input.ndim) + (index,)


def split(tensor: Any, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple:
    """Views of consecutive pieces along ``dim``: of ``split_size`` each (the last may be smaller), or of the
    given sizes, which must add up to the size of ``dim`` (``torch.split``)."""
    d = normalize_dim(dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, n - s) for s in range(0, n, step)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(f"split: the sizes {sizes} must be non-negative and add up to {n}, the size of "
                             f"dimension {d} of a tensor of shape {tuple(tensor.shape)}")
    starts = np.cumsum([0] + sizes)
    return tuple(tensor[_along(tensor, d, slice(int(a), int(a) + s))] for a, s in zip(starts, sizes))


def chunk(input: Any, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` views of equal size along ``dim`` (the last may be smaller, and there may be
    fewer, as ``torch.chunk``)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = input.shape[normalize_dim(dim, input.ndim)]
    if n == 0:  # PyTorch gives `chunks` empty pieces
        return tuple(input[_along(input, dim, slice(0, 0))] for _ in range(chunks))
    return split(input, -(-n // chunks), dim)


def unbind(input: Any, dim: int = 0) -> tuple:
    """The slices along ``dim``, each without that axis (``torch.unbind``)."""
    d = normalize_dim(dim, input.ndim)
    return tuple(input[_along(input, d, i)] for i in range(input.shape[d]))


def narrow(input: Any, dim: int, start: int, length: int) -> Any:
    """The view of ``length`` entries from ``start`` along ``dim`` (``torch.narrow``)."""
    d = normalize_dim(dim, input.ndim)
    n = input.shape[d]
    start = start + n if start < 0 else start
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds the size {n} of dimension {d}")
    return input[_along(input, d, slice(start, start + length))]


def flip(input: Any, dims: int | Sequence[int]) -> Any:
    """x reversed along each axis in ``dims`` (``torch.flip``; a view here)."""
    axes = {normalize_dim(d, input.ndim) for d in ((dims,) if isinstance(dims, int) else dims)}
    return input[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(input.ndim))]


def index_select(input: Any, dim: int, index: Any) -> Any:
    """Entries ``index`` (1-D integers) along ``dim``;  the gradient accumulates over repeated indices."""
    if getattr(index, "ndim", 1) > 1:
        raise IndexError(f"index_select: index must be 1-D, got shape {tuple(index.shape)}")
    return input[_along(input, dim, index)]


def gather(input: Any, dim: int, index: Any) -> Any:
    """y[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (``torch.gather``): built from indexing.

    ``index`` has the input's number of dimensions and is no larger outside ``dim``.
    """
    d = normalize_dim(dim, input.ndim)
    idx = np.asarray(index.data if isinstance(index, Tensor) else index)
    if idx.ndim != input.ndim or any(idx.shape[k] > input.shape[k] for k in range(idx.ndim) if k != d):
        raise RuntimeError(f"gather: index of shape {idx.shape} must have the input's {input.ndim} dimensions "
                           f"and be no larger than the input {tuple(input.shape)} outside dim {d}")
    at = tuple(idx if k == d else np.arange(n).reshape([-1 if j == k else 1 for j in range(idx.ndim)])
               for k, n in enumerate(idx.shape))
    return input[at]


def _install_methods() -> None:
    Tensor.split = split
    Tensor.chunk = chunk
    Tensor.unbind = unbind
    Tensor.narrow = narrow
    Tensor.flip = lambda self, *dims: flip(self, size_args(dims))
    Tensor.index_select = index_select
    Tensor.gather = gather


_install_methods()
