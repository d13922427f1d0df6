"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze, flatten, expand, repeat, pad, cat, stack,
clone, and indexing (``x[...]``) with split/chunk/unbind/narrow/flip/index_select/gather built on it.

Most are views of the input's memory (``is_view``); their backward moves the gradient back into the
input's layout and never computes anything. The backward of indexing adds the gradient into zeros at the
indexed positions (repeated indices accumulate); that op's own backward is indexing again, so gradients of
gradients flow through both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deltagrad import backend
from deltagrad.autograd.function import Function, defop, sum_to
from deltagrad.backend import xp
from deltagrad.ops._util import normalize_dim, randn
from deltagrad.tensor import Tensor

__all__ = ["reshape", "cat", "concat", "concatenate", "stack", "permute", "transpose", "swapaxes", "t", "squeeze",
           "unsqueeze", "flatten", "expand", "repeat", "pad", "clone", "split", "chunk", "unbind", "narrow", "flip",
           "index_select", "gather", "movedim"]


def _sizes(sizes: tuple) -> tuple[int, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch's size arguments."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    return tuple(int(s) for s in sizes)


def resolve_shape(shape, size: int) -> tuple[int, ...]:
    """PyTorch's ``view`` shapes: ints or one tuple, with at most one -1; a clear error if sizes differ."""
    shape = _sizes(shape)
    if shape.count(-1) > 1:
        raise RuntimeError(f"only one dimension can be inferred (-1) in shape {list(shape)}")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise RuntimeError(f"shape {list(shape)} is invalid for input of size {size}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size or any(s < 0 for s in shape):
        raise RuntimeError(f"shape {list(shape)} is invalid for input of size {size}")
    return shape


# ---- views that rearrange the same elements -------------------------------------------------------------------


class Reshape(Function):
    """y = x with a new shape (same elements in row-major order);  dx = g reshaped back"""

    is_view = True

    def forward(ctx, x, *shape):
        ctx.shape_in = x.shape
        return x.reshape(resolve_shape(shape, x.size))

    def backward(ctx, g):
        return reshape(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), 2, -1), {}), ((randn(r, 6), (3, 2)), {}),
                                       ((randn(r, 0, 4), -1, 2), {})])


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[dims[i]];  dx = g permuted back

    >>> deltagrad.zeros(2, 3, 4).permute(2, 0, 1).shape   # (4, 2, 3)
    """

    is_view = True

    def forward(ctx, x, *dims):
        dims = _sizes(dims)
        if len(dims) != x.ndim:
            raise RuntimeError(f"permute: the tensor has {x.ndim} dimensions (shape {x.shape}) but "
                               f"{len(dims)} dims were given: {list(dims)}")
        ctx.dims = tuple(normalize_dim(d, x.ndim) for d in dims)
        if len(set(ctx.dims)) != len(dims):
            raise RuntimeError(f"permute: duplicate dims are not allowed, got {list(dims)}")
        return xp.transpose(x, ctx.dims)

    def backward(ctx, g):
        return permute(g, tuple(np.argsort(ctx.dims).tolist()))

    examples = staticmethod(lambda r: [((randn(r, 2, 3, 4), 2, 0, 1), {}), ((randn(r, 3, 4), (-1, 0)), {})])


class Transpose(Function):
    """y = x with axes ``dim0`` and ``dim1`` swapped;  dx = g swapped back

    >>> deltagrad.zeros(2, 3, 4).transpose(0, -1).shape   # (4, 3, 2)
    """

    is_view = True

    def forward(ctx, x, dim0, dim1):
        ctx.pair = normalize_dim(dim0, x.ndim, "dim0"), normalize_dim(dim1, x.ndim, "dim1")
        return xp.swapaxes(x, *ctx.pair) if x.ndim else x

    def backward(ctx, g):
        return transpose(g, *ctx.pair)

    examples = staticmethod(lambda r: [((randn(r, 2, 3, 4), 0, -1), {}), ((randn(r, 3, 4), 1, 0), {})])


class Squeeze(Function):
    """y = x without its size-1 axes (all, or those among ``dim``);  dx = g reshaped back

    >>> deltagrad.zeros(1, 3, 1).squeeze(-1).shape   # (1, 3)
    """

    is_view = True

    def forward(ctx, x, dim=None):
        ctx.shape_in = x.shape
        if dim is None:
            dims = range(x.ndim)
        else:
            dims = [normalize_dim(d, x.ndim) for d in ((dim,) if isinstance(dim, int) else dim)]
        return xp.squeeze(x, axis=tuple(d for d in dims if x.ndim and x.shape[d] == 1))

    def backward(ctx, g):
        return reshape(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 1, 3, 1),), {}), ((randn(r, 1, 3, 1),), dict(dim=-1)),
                                       ((randn(r, 1, 3, 1),), dict(dim=(0, 1)))])


class Unsqueeze(Function):
    """y = x with a new size-1 axis at ``dim`` (−ndim−1 ≤ dim ≤ ndim);  dx = g reshaped back

    >>> deltagrad.zeros(3, 4).unsqueeze(1).shape   # (3, 1, 4)
    """

    is_view = True

    def forward(ctx, x, dim):
        ctx.shape_in = x.shape
        if not -x.ndim - 1 <= dim <= x.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range [{-x.ndim - 1}, {x.ndim}] for a tensor of "
                             f"{x.ndim} dimensions")
        return xp.expand_dims(x, dim % (x.ndim + 1))

    def backward(ctx, g):
        return reshape(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), 1), {}), ((randn(r, 3), -1), {}), ((randn(r), 0), {})])


class Flatten(Function):
    """y = x with axes ``start_dim..end_dim`` merged into one;  dx = g reshaped back

    >>> deltagrad.zeros(8, 3, 5, 5).flatten(1).shape   # (8, 75)
    """

    is_view = True

    def forward(ctx, x, start_dim=0, end_dim=-1):
        ctx.shape_in = x.shape
        if x.ndim == 0:
            return x.reshape(1)
        s, e = normalize_dim(start_dim, x.ndim, "start_dim"), normalize_dim(end_dim, x.ndim, "end_dim")
        if s > e:
            raise RuntimeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        return x.reshape(x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])

    def backward(ctx, g):
        return reshape(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 2, 3, 4),), {}), ((randn(r, 2, 3, 4, 2), 1, -2), {}),
                                       ((randn(r),), {})])


class Expand(Function):
    """y = x broadcast to ``sizes`` (−1 keeps a size; new axes go in front), a read-only view;  dx = Σ g

    >>> deltagrad.zeros(3, 1).expand(2, -1, 4).shape   # (2, 3, 4)
    """

    is_view = True

    def forward(ctx, x, *sizes):
        sizes = _sizes(sizes)
        ctx.shape_in = x.shape
        lead = len(sizes) - x.ndim
        if lead < 0:
            raise RuntimeError(f"expand: the number of sizes given ({len(sizes)}) must be at least the number "
                               f"of dimensions of the tensor ({x.ndim}, shape {x.shape})")
        target = []
        for i, s in enumerate(sizes):
            n = x.shape[i - lead] if i >= lead else None
            if s == -1:
                if n is None:
                    raise RuntimeError(f"expand: -1 is not allowed in a new leading dimension ({i}) in {list(sizes)}")
                s = n
            elif n is not None and n != 1 and s != n:
                raise RuntimeError(f"expand: the expanded size ({s}) must match the existing size ({n}) at "
                                   f"non-singleton dimension {i}; target sizes {list(sizes)}, tensor sizes "
                                   f"{list(x.shape)}")
            target.append(s)
        return xp.broadcast_to(x, target)

    def backward(ctx, g):
        return sum_to(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 3, 1), 2, 3, 4), {}), ((randn(r, 1, 4), (-1, 4)), {}),
                                       ((randn(r), (2, 3)), {})])


class Repeat(Function):
    """y = x tiled ``sizes`` times along each axis (new axes in front);  dx = g summed over the copies

    >>> deltagrad.tensor([1.0, 2.0]).repeat(2, 2)   # [[1, 2, 1, 2], [1, 2, 1, 2]]
    """

    def forward(ctx, x, *sizes):
        sizes = _sizes(sizes)
        if len(sizes) < x.ndim:
            raise RuntimeError(f"repeat: the number of repeat sizes ({len(sizes)}) cannot be smaller than the "
                               f"number of dimensions of the tensor ({x.ndim})")
        ctx.shape_in, ctx.sizes = x.shape, sizes
        return xp.tile(x, sizes)

    def backward(ctx, g):
        from deltagrad.ops.reduce import sum as sum_  # reduce imports this module

        shape = (1,) * (len(ctx.sizes) - len(ctx.shape_in)) + ctx.shape_in
        split = [n for pair in zip(ctx.sizes, shape) for n in pair]  # (r0, s0, r1, s1, ...)
        return reshape(sum_(reshape(g, split), tuple(range(0, len(split), 2))), ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 2, 3), 2, 1), {}), ((randn(r, 3), (2, 2, 1)), {})])


class Clone(Function):
    """y = a copy of x (new memory);  dx = g"""

    def forward(ctx, x):
        return x.copy()

    def backward(ctx, g):
        return g

    examples = staticmethod(lambda r: [((randn(r, 2, 3),), {})])


class Pad(Function):
    """y = x padded with ``value`` (``torch.nn.functional.pad``, constant mode);  dx = g with the padding cut off

    ``pad = (left, right)`` for the last axis, then ``(top, bottom)`` for the one before, and so on;
    negative amounts crop. The backward is ``pad`` with the amounts negated.

    >>> deltagrad.pad(deltagrad.ones(2, 3), (1, 1)).shape   # (2, 5)
    """

    def forward(ctx, x, pad, mode="constant", value=None):
        if mode != "constant":
            raise NotImplementedError(f"pad: mode {mode!r} is not supported; only 'constant'")
        pad = tuple(int(p) for p in pad)
        if len(pad) % 2 or len(pad) // 2 > x.ndim:
            raise ValueError(f"pad: the padding {list(pad)} must have an even length of at most twice the "
                             f"number of dimensions ({x.ndim}, shape {x.shape})")
        ctx.pad = pad
        crop, widths = [slice(None)] * x.ndim, [(0, 0)] * x.ndim
        for i in range(len(pad) // 2):
            d, lo, hi = x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
            if x.shape[d] + lo + hi < 0:
                raise ValueError(f"pad: the size {x.shape[d]} of dimension {d} plus padding {lo} and {hi} "
                                 "is negative")
            crop[d] = slice(max(-lo, 0), x.shape[d] - max(-hi, 0))
            widths[d] = (max(lo, 0), max(hi, 0))
        return xp.pad(x[tuple(crop)], widths, constant_values=0 if value is None else value)

    def backward(ctx, g):
        return pad(g, tuple(-p for p in ctx.pad))

    examples = staticmethod(lambda r: [((randn(r, 2, 3, 4), (1, 2)), {}), ((randn(r, 2, 3, 4), (0, 1, 2, 0)), {}),
                                       ((randn(r, 3, 4), (-1, 2, 1, -1)), dict(value=0.5))])


reshape = defop(Reshape, method=("reshape", "view"))
permute = defop(Permute, method="permute")
transpose = defop(Transpose, method=("transpose", "swapaxes", "swapdims"))
squeeze = defop(Squeeze, method="squeeze")
unsqueeze = defop(Unsqueeze, method="unsqueeze")
flatten = defop(Flatten, method="flatten")
expand = defop(Expand, method="expand")
repeat = defop(Repeat, method="repeat")
clone = defop(Clone, method="clone")
pad = defop(Pad)
swapaxes = transpose


def t(input: Any) -> Any:
    """The transpose of a matrix (tensors of at most 2 dimensions, as ``torch.t``)."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but it has {input.ndim} (shape "
                           f"{tuple(input.shape)}); use transpose(dim0, dim1) or permute")
    return transpose(input, 0, -1)


def movedim(input: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Any:
    """Move axes ``source`` to positions ``destination``, the others keeping their order (a permute)."""
    src = [normalize_dim(d, input.ndim, "source") for d in ((source,) if isinstance(source, int) else source)]
    dst = [normalize_dim(d, input.ndim, "destination")
           for d in ((destination,) if isinstance(destination, int) else destination)]
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} differ in length")
    rest = iter(d for d in range(input.ndim) if d not in src)
    placed = dict(zip(dst, src))
    return permute(input, tuple(placed[i] if i in placed else next(rest) for i in range(input.ndim)))


# ---- joining ---------------------------------------------------------------------------------------------------


class Cat(Function):
    """y = the inputs joined along ``dim``;  each input's gradient is its slice of g"""

    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("cat needs at least one tensor")
        ctx.dim = normalize_dim(dim, xs[0].ndim)
        ctx.bounds = xp.cumsum([0] + [x.shape[ctx.dim] for x in xs])
        try:
            return xp.concatenate(xs, axis=ctx.dim)
        except ValueError:
            raise ValueError(f"cat: shapes {[x.shape for x in xs]} differ outside dim {dim}") from None

    def backward(ctx, g):
        index = [slice(None)] * g.ndim
        grads = []
        for k, need in enumerate(ctx.needs_input_grad):
            index[ctx.dim] = slice(int(ctx.bounds[k]), int(ctx.bounds[k + 1]))
            grads.append(g[tuple(index)] if need else None)
        return tuple(grads)

    examples = staticmethod(lambda r: [((randn(r, 2, 3), randn(r, 1, 3)), {}),
                                       ((randn(r, 2, 3), randn(r, 2, 1)), dict(dim=-1))])


class Stack(Function):
    """y = the inputs stacked along a new axis ``dim``;  each input's gradient is its slice of g"""

    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("stack needs at least one tensor")
        ctx.dim = normalize_dim(dim, xs[0].ndim + 1)
        shapes = {x.shape for x in xs}
        if len(shapes) > 1:
            raise ValueError(f"stack needs tensors of equal shape, got {[x.shape for x in xs]}")
        return xp.stack(xs, axis=ctx.dim)

    def backward(ctx, g):
        index = [slice(None)] * g.ndim
        grads = []
        for k, need in enumerate(ctx.needs_input_grad):
            index[ctx.dim] = k
            grads.append(g[tuple(index)] if need else None)
        return tuple(grads)

    examples = staticmethod(lambda r: [((randn(r, 2, 3), randn(r, 2, 3)), {}),
                                       ((randn(r, 2), randn(r, 2), randn(r, 2)), dict(dim=1))])


_cat = defop(Cat)
_stack = defop(Stack)


def cat(tensors: Sequence[Any], dim: int = 0) -> Any:
    """Join a sequence of tensors along an existing dimension (``torch.cat``)."""
    return _cat(*tensors, dim=dim)


concat = concatenate = cat


def stack(tensors: Sequence[Any], dim: int = 0) -> Any:
    """Join a sequence of equally shaped tensors along a new dimension (``torch.stack``)."""
    return _stack(*tensors, dim=dim)


# ---- indexing ---------------------------------------------------------------------------------------------------

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

    is_view = False

    examples = staticmethod(lambda r: [((randn(r, 4, 3), np.array([0, 2, 0, 3])), {}),
                                       ((randn(r, 4, 3), (np.array([[0], [3]]), np.array([1, 1, 2]))), {}),
                                       ((randn(r, 4, 3), (slice(1, None), [2, 0, 2])), {}),
                                       ((randn(r, 3, 4), randn(r, 3, 4) > 0), {}),
                                       ((randn(r, 2, 3, 4), (Ellipsis, np.array([True, False, True, True]))), {})])


class GetItemBackward(Function):
    """y = zeros(shape) with g added at ``index`` (repeated positions accumulate): the VJP of x[index];
    its own backward is indexing: dg = dy[index]"""

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
    Tensor.t = t
    Tensor.movedim = movedim
    Tensor.split = split
    Tensor.chunk = chunk
    Tensor.unbind = unbind
    Tensor.narrow = narrow
    Tensor.flip = lambda self, *dims: flip(self, _sizes(dims))
    Tensor.index_select = index_select
    Tensor.gather = gather
    Tensor.contiguous = lambda self: self if self.data.flags.c_contiguous else clone(self)
    Tensor.view_as = lambda self, other: reshape(self, other.shape)
    Tensor.reshape_as = lambda self, other: reshape(self, other.shape)
    Tensor.expand_as = lambda self, other: expand(self, other.shape)


_install_methods()
