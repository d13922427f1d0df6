"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze, flatten, expand, repeat, pad, cat, stack,
clone. (Indexing and the ops built on it are in ``indexing.py``.)

Most are views of the input's memory (``is_view``); their backward moves the gradient back into the
input's layout and never computes anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deltagrad.autograd.function import Function, defop, sum_to
from deltagrad.backend import xp
from deltagrad.ops._util import normalize_dim, randn, size_args
from deltagrad.tensor import Tensor

__all__ = ["reshape", "cat", "concat", "concatenate", "stack", "permute", "transpose", "swapaxes", "t", "squeeze",
           "unsqueeze", "flatten", "expand", "repeat", "pad", "clone", "movedim"]


def resolve_shape(shape, size: int) -> tuple[int, ...]:
    """PyTorch's ``view`` shapes: ints or one tuple, with at most one -1; a clear error if sizes differ."""
    shape = size_args(shape)
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


def _viewed(ctx: Any, x: Any, y: Any) -> Any:
    """``y``, a reshape of ``x``; a copy where NumPy had to copy (as PyTorch's reshape), which is no view."""
    if y.base is not x and (x.base is None or y.base is not x.base):
        ctx.copied = True
    return y


class Reshape(Function):
    """y = x with a new shape (same elements in row-major order);  dx = g reshaped back"""

    inputs = ("x",)

    is_view = True

    def forward(ctx, x, *shape):
        ctx.shape_in = x.shape
        try:  # NumPy checks the common case at once; the error below says what PyTorch would
            y = x.reshape(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
        except (ValueError, TypeError):
            y = x.reshape(resolve_shape(shape, x.size))
        if y.base is not x and (x.base is None or y.base is not x.base):  # _viewed, inline: the hot path
            ctx.copied = True
        return y

    def backward(ctx, g):
        return reshape(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), 2, -1), {}), ((randn(r, 6), (3, 2)), {}),
                                       ((randn(r, 0, 4), -1, 2), {})])


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[dims[i]];  dx = g permuted back

    >>> deltagrad.zeros(2, 3, 4).permute(2, 0, 1).shape   # (4, 2, 3)
    """

    inputs = ("x",)

    is_view = True

    def forward(ctx, x, *dims):
        dims = size_args(dims)
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

    inputs = ("x",)

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

    inputs = ("x",)

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

    inputs = ("x",)

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

    inputs = ("x",)

    is_view = True

    def forward(ctx, x, start_dim=0, end_dim=-1):
        ctx.shape_in = x.shape
        if x.ndim == 0:
            return x.reshape(1)
        s, e = normalize_dim(start_dim, x.ndim, "start_dim"), normalize_dim(end_dim, x.ndim, "end_dim")
        if s > e:
            raise RuntimeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        return _viewed(ctx, x, x.reshape(x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]))

    def backward(ctx, g):
        return reshape(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 2, 3, 4),), {}), ((randn(r, 2, 3, 4, 2), 1, -2), {}),
                                       ((randn(r),), {})])


class Expand(Function):
    """y = x broadcast to ``sizes`` (−1 keeps a size; new axes go in front), a read-only view;  dx = Σ g

    >>> deltagrad.zeros(3, 1).expand(2, -1, 4).shape   # (2, 3, 4)
    """

    inputs = ("x",)

    is_view = True

    def forward(ctx, x, *sizes):
        sizes = size_args(sizes)
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

    inputs = ("x",)

    def forward(ctx, x, *sizes):
        sizes = size_args(sizes)
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

    inputs = ("x",)

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

    inputs = ("x",)

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


reshape = defop(Reshape, method="reshape")
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


def view(self: Tensor, *shape: Any) -> Tensor:
    """The same memory with a new shape (``Tensor.view``): an error, as in PyTorch, where that needs a copy."""
    y = reshape(self, *shape)
    if y._version is not self._version:
        raise RuntimeError(f"view size is not compatible with input tensor's size and stride (shape "
                           f"{tuple(self.shape)}, strides {self.data.strides}); use .reshape(...) instead")
    return y


def _install_methods() -> None:
    Tensor.view = view
    Tensor.t = t
    Tensor.movedim = movedim
    Tensor.contiguous = lambda self: self if self.data.flags.c_contiguous else clone(self)
    Tensor.is_contiguous = lambda self: bool(self.data.flags.c_contiguous)
    Tensor.view_as = lambda self, other: reshape(self, other.shape)
    Tensor.reshape_as = lambda self, other: reshape(self, other.shape)
    Tensor.expand_as = lambda self, other: expand(self, other.shape)


_install_methods()
