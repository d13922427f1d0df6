"""Reductions: sum, mean, var, max/min (values and indices), prod, logsumexp.

``dim`` is an int, a tuple of ints or None (all); ``keepdim`` as in PyTorch. Backward rules bring the
gradient back to the kept-dims shape and broadcast it over the reduced axes.
"""

from __future__ import annotations

from deltagrad.autograd.function import Function, broadcast_to, defop
from deltagrad.backend import xp
from deltagrad.ops._util import normalize_dim, randn
from deltagrad.ops.shape import reshape

__all__ = ["sum", "mean"]


def axes_of(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, int or tuple) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted(normalize_dim(d, ndim) for d in dims))


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as size 1."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unreduce(g, shape: tuple[int, ...], axes: tuple[int, ...]):
    """Broadcast a reduced gradient back over ``shape`` (the VJP of any sum over ``axes``)."""
    return broadcast_to(reshape(g, kept_shape(shape, axes)), shape)


class Sum(Function):
    """y = Σ x over ``dim``;  dx = g broadcast back"""

    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        return x.sum(axis=ctx.axes, keepdims=keepdim)

    def backward(ctx, g):
        return unreduce(g, ctx.shape, ctx.axes)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 2, 3, 4),), dict(dim=(0, 2))),
                                       ((randn(r, 3, 4),), dict(dim=-1, keepdim=True))])


class Mean(Function):
    """y = (1/n) Σ x over ``dim``;  dx = g / n broadcast back"""

    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.axes = x.shape, axes_of(dim, x.ndim)
        n = 1
        for a in ctx.axes:
            n *= x.shape[a]
        ctx.n = n
        return x.mean(axis=ctx.axes, keepdims=keepdim) if n else x.sum(axis=ctx.axes, keepdims=keepdim) * xp.nan

    def backward(ctx, g):
        return unreduce(g / ctx.n, ctx.shape, ctx.axes)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 2, 3, 4),), dict(dim=1, keepdim=True))])


sum = defop(Sum, method="sum")
mean = defop(Mean, method="mean")
