"""Reductions: sum, mean, var/std, max/min (values and indices), amax/amin, prod, logsumexp.

``dim`` is an int, a tuple of ints or None (all; an empty tuple also means all, as in PyTorch); ``keepdim``
as in PyTorch. Backward rules bring the gradient back to the kept-dims shape and broadcast it over the
reduced axes (``unreduce``), then weight it by the local derivative.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple
from typing import Any

from deltagrad.autograd.function import Function, broadcast_to, defop, is_tensor
from deltagrad.backend import xp
from deltagrad.ops._util import const, normalize_dim, randn
from deltagrad.ops.compare import argmax, argmin
from deltagrad.ops.elementwise import exp, maximum, minimum, where
from deltagrad.ops.indexing import getitem_backward
from deltagrad.ops.shape import permute, reshape, unsqueeze
from deltagrad.tensor import Tensor

__all__ = ["sum", "mean", "var", "std", "max", "min", "amax", "amin", "prod", "logsumexp"]

#: what ``max(x, dim)`` / ``min(x, dim)`` return, as ``torch.return_types.max`` / ``min``
MaxResult = namedtuple("max", ("values", "indices"))
MinResult = namedtuple("min", ("values", "indices"))


def axes_of(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, int or tuple) as a sorted tuple of non-negative axes; an error names a repeated dim."""
    if dim is None or (isinstance(dim, (tuple, list)) and not dim):
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = [normalize_dim(int(d), ndim) for d in dims]
    for a, d in zip(axes, dims):
        if axes.count(a) > 1:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return () if ndim == 0 else tuple(sorted(axes))


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as size 1."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unreduce(g, shape: tuple[int, ...], axes: tuple[int, ...]):
    """Broadcast a reduced gradient back over ``shape`` (the VJP of any sum over ``axes``)."""
    return broadcast_to(reshape(g, kept_shape(shape, axes)), shape)


def count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    """How many elements each output of a reduction over ``axes`` gathers."""
    return math.prod(shape[a] for a in axes)


def _check_nonempty(name: str, shape: tuple[int, ...], axes: tuple[int, ...], dim: Any) -> None:
    # max/min of nothing has no value (PyTorch refuses too); sum/prod/logsumexp have identities
    if dim is None and math.prod(shape) == 0:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0 "
                           f"(shape {shape}). Specify the reduction dim with the 'dim' argument.")
    for a in axes:
        if shape[a] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {a} to have non-zero size (shape {shape}).")


# ---- sums and moments -------------------------------------------------------------------------------------


class Sum(Function):
    """y = Σ x over ``dim``;  dx = g broadcast back

    >>> deltagrad.ones(2, 3).sum(1)   # tensor([3., 3.])
    """

    inputs = ("x",)

    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        return x.sum(axis=ctx.axes, keepdims=keepdim)

    def backward(ctx, g):
        return unreduce(g, ctx.shape, ctx.axes)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 2, 3, 4),), dict(dim=(0, 2))),
                                       ((randn(r, 3, 4),), dict(dim=-1, keepdim=True)),
                                       ((randn(r, 0, 3),), dict(dim=0)), ((randn(r),), dict(dim=0))])


class Mean(Function):
    """y = (1/n) Σ x over ``dim``;  dx = g / n broadcast back (the mean of nothing is NaN)

    >>> deltagrad.tensor([[1.0, 2.0], [3.0, 5.0]]).mean(dim=0, keepdim=True)   # [[2.0, 3.5]]
    """

    inputs = ("x",)

    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        ctx.n = count(x.shape, ctx.axes)
        if ctx.n:
            return x.mean(axis=ctx.axes, keepdims=keepdim)
        return x.sum(axis=ctx.axes, keepdims=keepdim) * xp.nan  # NaN, without NumPy's empty-slice warning

    def backward(ctx, g):
        return unreduce(g * (1.0 / ctx.n if ctx.n else xp.nan), ctx.shape, ctx.axes)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 2, 3, 4),), dict(dim=1, keepdim=True)),
                                       ((randn(r, 2, 3, 4),), dict(dim=(-1, 0))), ((randn(r, 0, 2),), dict(dim=0))])


def _var_grad(ctx, g, x):
    """d var / dx = g · 2 (x − x̄) / (n − correction), written with ops so that it differentiates again."""
    scale = 2.0 / ctx.dof if ctx.dof else xp.inf
    return unreduce(g, ctx.shape, ctx.axes) * (x - mean(x, ctx.axes, True)) * scale


class Var(Function):
    """y = Σ (x − x̄)² / (n − correction) over ``dim``;  dx = g · 2 (x − x̄) / (n − correction)"""

    inputs = ("x",)

    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        n = count(x.shape, ctx.axes)
        ctx.dof = builtins.max(n - correction, 0)  # PyTorch clamps at 0: NaN or inf
        d = x - x.sum(axis=ctx.axes, keepdims=True) / n  # sum / n, not x.mean(), which warns on empty slices
        return (d * d).sum(axis=ctx.axes, keepdims=keepdim) / ctx.dof

    def backward(ctx, g):
        x = ctx.args[0]
        return _var_grad(ctx, g, x)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 3, 4),), dict(dim=1, keepdim=True)),
                                       ((randn(r, 2, 3, 4),), dict(dim=(0, -1), correction=0)),
                                       ((randn(r, 5),), dict(dim=0, correction=2))])


class Std(Function):
    """y = √var(x);  dx = g / (2y) · d var/dx, and 0 where y = 0 (as PyTorch)"""

    inputs = ("x",)

    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        return xp.sqrt(Var.forward(ctx, x, dim, correction, keepdim))

    def backward(ctx, g):
        x = ctx.args[0]
        y = ctx.result
        zero = const(y) == 0
        gv = where(zero, 0.0, g / (2 * where(zero, 1.0, y)))
        return _var_grad(ctx, gv, x)

    examples = Var.examples


def _correction(name: str, dim: Any, unbiased: Any, correction: Any) -> tuple[Any, float]:
    """PyTorch's overloads: ``var(x, unbiased)``, ``var(x, dim, unbiased)``, ``var(x, dim, correction=c)``."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}(): pass either unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, correction


_var, _std = defop(Var), defop(Std)


def var(input: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Any:
    """Variance over ``dim``: Σ (x − x̄)² / (n − correction), Bessel-corrected by default (``torch.var``).

    >>> deltagrad.tensor([1.0, 2.0, 3.0, 4.0]).var()   # tensor(1.6667)
    """
    dim, correction = _correction("var", dim, unbiased, correction)
    return _var(input, dim=dim, correction=correction, keepdim=keepdim)


def std(input: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Any:
    """Standard deviation over ``dim``: √var (``torch.std``); its gradient is 0 where it is 0."""
    dim, correction = _correction("std", dim, unbiased, correction)
    return _std(input, dim=dim, correction=correction, keepdim=keepdim)


# ---- max and min --------------------------------------------------------------------------------------------


class Amax(Function):
    """y = max x over ``dim``;  dx = g shared evenly among the positions that attain the maximum

    >>> deltagrad.tensor([[1.0, 4.0], [4.0, 2.0]]).amax(dim=(0, 1))   # tensor(4.)
    """

    inputs = ("x",)

    name_ = "amax"
    pick = staticmethod(xp.max)
    nan_ties = False  # amax: NaN == NaN is false, so a NaN result gives a NaN gradient (as PyTorch)

    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        _check_nonempty(ctx.name_, x.shape, ctx.axes, dim)
        return ctx.pick(x, axis=ctx.axes, keepdims=keepdim)

    def backward(ctx, g):
        x, y = const(ctx.args[0]), const(ctx.result).reshape(kept_shape(ctx.shape, ctx.axes))
        hit = x == y
        if ctx.nan_ties:
            hit |= xp.isnan(x) & xp.isnan(y)
        share = hit / hit.sum(axis=ctx.axes, keepdims=True)
        return unreduce(g, ctx.shape, ctx.axes) * share.astype(g.dtype)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 3, 4),), dict(dim=-1, keepdim=True)),
                                       ((randn(r, 2, 3, 4),), dict(dim=(0, 2))), ((randn(r),), {})])


class Amin(Amax):
    """y = min x over ``dim``;  dx = g shared evenly among the positions that attain the minimum"""

    name_ = "amin"
    pick = staticmethod(xp.min)


class Max(Amax):
    """y = max x (all elements: g shared among ties) or max along ``dim`` (g to the index that is returned)"""

    name_ = "max"
    arg = staticmethod(xp.argmax)
    nan_ties = True  # the maximum of all elements is NaN if any is; its gradient goes to the NaNs

    def forward(ctx, x, dim=None, keepdim=False):
        if dim is not None and not isinstance(dim, int):
            raise TypeError(f"{ctx.name_}(): dim must be an int, not {type(dim).__name__}")
        ctx.dim = dim
        return Amax.forward(ctx, x, dim, keepdim)

    def backward(ctx, g):
        if ctx.dim is None or not ctx.axes:
            return Amax.backward(ctx, g)
        # g goes where the returned index points: scatter g into zeros at (…, index, …)
        axis = ctx.axes[0]
        index = ctx.arg(const(ctx.args[0]), axis=axis, keepdims=True)
        nd = index.ndim
        at = tuple(index if d == axis else xp.arange(n).reshape([-1 if k == d else 1 for k in range(nd)])
                   for d, n in enumerate(index.shape))
        return getitem_backward(reshape(g, index.shape), ctx.shape, at)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 3, 4),), dict(dim=1)),
                                       ((randn(r, 2, 3, 4),), dict(dim=-3, keepdim=True)), ((randn(r),), dict(dim=0))])


class Min(Max):
    """y = min x (all elements: g shared among ties) or min along ``dim`` (g to the index that is returned)"""

    name_ = "min"
    pick = staticmethod(xp.min)
    arg = staticmethod(xp.argmin)


amax = defop(Amax, method="amax")
amin = defop(Amin, method="amin")
_max, _min = defop(Max), defop(Min)


def _extreme(op, arg, result, pairwise, input, dim, keepdim):
    if is_tensor(dim) or (dim is not None and not isinstance(dim, int) and hasattr(dim, "shape")):
        return pairwise(input, dim)  # torch.max(a, b): the elementwise maximum
    if dim is None:
        if keepdim:
            raise TypeError(f"{op.op.name_}(): keepdim needs a dim")
        return op(input)
    values = op(input, dim=dim, keepdim=keepdim)
    if const(input).ndim == 0:
        index = xp.zeros((), xp.int64)
        return result(values, Tensor._make(index, None) if is_tensor(input) else index)
    return result(values, arg(input, dim=dim, keepdim=keepdim))


def max(input: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The largest element (a 0-d tensor), or along ``dim`` the named tuple ``(values, indices)`` (``torch.max``).

    ``max(a, b)`` with a tensor ``b`` is ``maximum(a, b)``. Along ``dim`` the first maximal index is returned
    and the gradient goes to it; over all elements the gradient is shared evenly among ties.

    >>> v, i = deltagrad.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1)   # v = [5., 7.], i = [1, 0]
    """
    return _extreme(_max, argmax, MaxResult, maximum, input, dim, keepdim)


def min(input: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The smallest element, or along ``dim`` the named tuple ``(values, indices)`` (``torch.min``)."""
    return _extreme(_min, argmin, MinResult, minimum, input, dim, keepdim)


# ---- product and log-sum-exp ---------------------------------------------------------------------------------


def _others_array(x, axes):
    """Π_{j≠i} x_j over each reduced slice, exact where x has zeros (plain arrays: the fast path)."""
    zero = x == 0
    nz = zero.sum(axis=axes, keepdims=True)
    safe = xp.where(zero, 1, x)
    p = safe.prod(axis=axes, keepdims=True)  # the product of the non-zero entries
    return xp.where(nz == 0, p / safe, xp.where(zero & (nz == 1), p, 0)).astype(x.dtype, copy=False)


def _others_graph(x, axes):
    """Π_{j≠i} x_j as a recorded expression, so that prod differentiates to any order with zeros in x.

    The reduced axes are moved last and flattened to length n; row i of an n×n matrix holds x with
    x_i replaced by 1, and its product is the product of the others. O(n²) memory, used only in create_graph.
    """
    keep = [d for d in range(x.ndim) if d not in axes]
    perm = keep + list(axes)
    lead = tuple(x.shape[d] for d in keep)
    n = count(x.shape, axes)
    rows = unsqueeze(reshape(permute(x, perm), lead + (n,)), -2)  # (..., 1, n)
    others = prod(where(xp.eye(n, dtype=bool), 1.0, rows), dim=-1)  # (..., n)
    moved = reshape(others, lead + tuple(x.shape[d] for d in axes))
    return permute(moved, [perm.index(d) for d in range(x.ndim)])


class Prod(Function):
    """y = Π x over ``dim``;  dx = g · Π_{j≠i} x_j (the product of the others: exact where x has zeros)

    >>> deltagrad.tensor([[2.0, 3.0], [0.0, 4.0]]).prod(1)   # tensor([6., 0.])
    """

    inputs = ("x",)

    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        return x.prod(axis=ctx.axes, keepdims=keepdim)

    def backward(ctx, g):
        x = ctx.args[0]
        others = _others_graph(x, ctx.axes) if is_tensor(x) else _others_array(x, ctx.axes)
        return unreduce(g, ctx.shape, ctx.axes) * others

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 3, 4),), dict(dim=1, keepdim=True)),
                                       ((xp.array([[0.0, 2.0, -1.5], [0.0, 0.0, 3.0], [1.2, 0.5, 2.0]]),),
                                        dict(dim=-1)),
                                       ((xp.array([[1.5, 0.0], [0.7, -2.0]]),), {}), ((randn(r, 2, 0),), dict(dim=1))])


class LogSumExp(Function):
    """y = m + log Σ exp(x − m) over ``dim``, m the (finite) maximum;  dx = g · exp(x − y) (the softmax)

    Rows of all −inf give −inf with gradient 0; a row with +inf gives +inf, its gradient shared among the
    +inf entries (the limit of the softmax). No NumPy warnings for these legal inputs. ``dim=None``
    reduces all elements (PyTorch requires a dim).

    >>> deltagrad.tensor([[1000.0, 1000.0]]).logsumexp(1)   # tensor([1000.6931]) (log 2 above 1000)
    """

    inputs = ("x",)

    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        if count(x.shape, ctx.axes) == 0:
            y = xp.full(kept_shape(x.shape, ctx.axes), -xp.inf, dtype=x.dtype)
        else:
            m = x.max(axis=ctx.axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)
            y = xp.log(xp.exp(x - m).sum(axis=ctx.axes, keepdims=True)) + m
        return y if keepdim else y.reshape([n for d, n in enumerate(x.shape) if d not in ctx.axes])

    def backward(ctx, g):
        x = ctx.args[0]
        y = reshape(ctx.result, kept_shape(ctx.shape, ctx.axes))
        yc = const(y)
        finite = xp.isfinite(yc)
        p = exp(where(finite, x - where(finite, y, 0.0), 0.0))
        if not finite.all():  # the limits: 0 for −inf rows, shared among the +inf entries of +inf rows
            top = (const(x) == xp.inf) & (yc == xp.inf)
            limit = top / xp.maximum(top.sum(axis=ctx.axes, keepdims=True), 1)
            p = where(finite, p, xp.where(xp.isnan(yc), xp.nan, limit).astype(yc.dtype))
        return unreduce(g, ctx.shape, ctx.axes) * p

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), dict(dim=1)), ((randn(r, 3, 4) * 30,), dict(dim=0)),
                                       ((randn(r, 2, 3, 4),), dict(dim=(0, 2), keepdim=True)),
                                       ((randn(r, 2, 3),), {}),
                                       ((xp.array([[-xp.inf, 0.5, 1.0], [2.0, -xp.inf, -xp.inf]]),), dict(dim=-1))])


sum = defop(Sum, method="sum")
mean = defop(Mean, method="mean")
prod = defop(Prod, method="prod")
logsumexp = defop(LogSumExp, method="logsumexp")

for _name, _fn in (("var", var), ("std", std), ("max", max), ("min", min)):
    setattr(Tensor, _name, _fn)
