"""Comparisons and arg-max/arg-min: ops without a derivative (their outputs are bool or int64).

They are ops all the same, so that ``deltagrad.capture`` records them: an accuracy computed inside a
captured step (``(logits.argmax(1) == y).float().mean()``) is computed again at every replay.
"""

from __future__ import annotations

from deltagrad.autograd.function import Function, defop
from deltagrad.backend import xp
from deltagrad.ops._util import normalize_dim, promote, randn

__all__ = ["eq", "ne", "lt", "le", "gt", "ge", "argmax", "argmin"]


class _Compare(Function):
    """A bool tensor, elementwise (broadcasting), never requiring grad."""

    inputs = ("a", "b")

    differentiable = False
    ufunc = None

    def forward(ctx, a, b):
        if a.__class__ is not xp.ndarray or b.__class__ is not xp.ndarray or a.dtype is not b.dtype:
            a, b = promote(a, b)  # compared in PyTorch's common dtype
        return type(ctx).ufunc(a, b)

    examples = staticmethod(lambda r: [((randn(r, 3, 4).round(), randn(r, 4).round()), {}),
                                       ((randn(r, 5), 0.0), {})])


class Equal(_Compare):
    ufunc = staticmethod(xp.equal)


class NotEqual(_Compare):
    ufunc = staticmethod(xp.not_equal)


class Less(_Compare):
    ufunc = staticmethod(xp.less)


class LessEqual(_Compare):
    ufunc = staticmethod(xp.less_equal)


class Greater(_Compare):
    ufunc = staticmethod(xp.greater)


class GreaterEqual(_Compare):
    ufunc = staticmethod(xp.greater_equal)


class _Arg(Function):
    """The int64 index of the extreme element along ``dim`` (of the flattened input when ``dim`` is None)."""

    inputs = ("x",)

    differentiable = False
    find = None

    def forward(ctx, x, dim=None, keepdim=False):
        find = type(ctx).find
        if dim is None:
            if x.size == 0:
                raise RuntimeError(f"{type(ctx).__name__.lower()}: cannot take the index of an empty tensor")
            out = xp.asarray(find(x), dtype=xp.int64)
            return out.reshape((1,) * x.ndim) if keepdim else out
        return find(x, axis=normalize_dim(dim, x.ndim), keepdims=keepdim).astype(xp.int64, copy=False)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 3, 4),), dict(dim=1)),
                                       ((randn(r, 2, 3, 4),), dict(dim=-1, keepdim=True))])


class ArgMax(_Arg):
    find = staticmethod(xp.argmax)


class ArgMin(_Arg):
    find = staticmethod(xp.argmin)


eq = defop(Equal, "eq", method=("eq", "__eq__"))
ne = defop(NotEqual, "ne", method=("ne", "__ne__"))
lt = defop(Less, "lt", method=("lt", "__lt__"))
le = defop(LessEqual, "le", method=("le", "__le__"))
gt = defop(Greater, "gt", method=("gt", "__gt__"))
ge = defop(GreaterEqual, "ge", method=("ge", "__ge__"))
argmax = defop(ArgMax, "argmax", method="argmax")
argmin = defop(ArgMin, "argmin", method="argmin")
