"""Activation and normalization ops that act on a whole axis or batch: softmax, log-softmax, dropout, batch norm.

(The pointwise nonlinearities, ReLU, tanh, sigmoid, are elementwise ops.) Each is one node with its
backward beside it; softmax and log-softmax subtract the maximum first, so huge inputs do not overflow.
"""

from __future__ import annotations

import warnings
from typing import Any

from deltagrad.autograd.function import Function, defop
from deltagrad.backend import xp
from deltagrad.ops._util import normalize_dim, randn
from deltagrad.ops.elementwise import exp, sqrt
from deltagrad.ops.reduce import mean, sum
from deltagrad.random import default_generator
from deltagrad.tensor import Tensor

__all__ = ["softmax", "log_softmax"]


def _softmax_dim(ndim: int, dim: Any, name: str) -> int:
    if dim is None:  # PyTorch's legacy choice when no dim is given
        warnings.warn(f"implicit dimension choice for {name} has been deprecated; pass dim", UserWarning,
                      stacklevel=4)
        dim = 0 if ndim in (0, 1, 3) else 1
    return normalize_dim(dim, ndim)


def _shifted(x, dim: int):
    """x − max(x) along dim: every exponent ≤ 0. (+∞ or an all −∞ row gives NaN, as in PyTorch.)"""
    return x - x.max(axis=dim, keepdims=True)


class Softmax(Function):
    """y = eˣ / Σ eˣ along ``dim``;  dx = y · (g − Σ g·y)

    >>> deltagrad.tensor([1.0, 2.0, 3.0]).softmax(0)   # tensor([0.0900, 0.2447, 0.6652])
    """

    inputs = ("x",)

    def forward(ctx, x, dim=None):
        if x.ndim == 0 or x.size == 0:
            ctx.dim = None if x.ndim == 0 else normalize_dim(dim if dim is not None else -1, x.ndim)
            return xp.ones_like(x) if x.ndim == 0 else x.copy()
        ctx.dim = d = _softmax_dim(x.ndim, dim, "softmax")
        e = xp.exp(_shifted(x, d))
        e /= e.sum(axis=d, keepdims=True)
        return e

    def backward(ctx, g):
        y = ctx.result
        if ctx.dim is None:
            return g * 0
        return y * (g - sum(g * y, ctx.dim, True))

    examples = staticmethod(lambda r: [((randn(r, 3, 4), 1), {}), ((randn(r, 2, 3, 2) * 3, 0), {}),
                                       ((randn(r, 5), -1), {})])


class LogSoftmax(Function):
    """y = x − log Σ eˣ along ``dim``;  dx = g − eʸ · Σ g"""

    inputs = ("x",)

    def forward(ctx, x, dim=None):
        if x.ndim == 0 or x.size == 0:
            ctx.dim = None if x.ndim == 0 else normalize_dim(dim if dim is not None else -1, x.ndim)
            return xp.zeros_like(x) if x.ndim == 0 else x.copy()
        ctx.dim = d = _softmax_dim(x.ndim, dim, "log_softmax")
        z = _shifted(x, d)
        z -= xp.log(xp.exp(z).sum(axis=d, keepdims=True))
        return z

    def backward(ctx, g):
        if ctx.dim is None:
            return g * 0
        return g - exp(ctx.result) * sum(g, ctx.dim, True)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), 1), {}), ((randn(r, 2, 3, 2) * 3, 0), {}),
                                       ((randn(r, 5), -1), {})])


softmax = defop(Softmax, method="softmax")
log_softmax = defop(LogSoftmax, "log_softmax", method="log_softmax")


# ---- dropout -----------------------------------------------------------------------------------------------------


class Dropout(Function):
    """Inverted dropout: y = x · m / (1 − p) with m ~ Bernoulli(1 − p) per element;  dx = g · m / (1 − p)

    The mask is drawn in forward from ``deltagrad.random.default_generator()`` (so ``manual_seed`` makes it
    repeatable, and a captured step draws a new one on every replay). Expected value of y equals x.
    """

    inputs = ("x",)

    def forward(ctx, x, p=0.5):
        if p >= 1:
            ctx.mask = xp.zeros(x.shape, x.dtype)
        elif p <= 0:
            ctx.mask = xp.ones(x.shape, x.dtype)
        else:
            keep = default_generator().random(x.shape, dtype=xp.float32) >= p
            ctx.mask = keep * x.dtype.type(1 / (1 - p))
        return x * ctx.mask

    def backward(ctx, g):
        return g * ctx.mask

    # a random mask cannot be checked against finite differences; the deterministic ends can
    examples = staticmethod(lambda r: [((randn(r, 3, 4), 0.0), {}), ((randn(r, 5), 1.0), {})])


dropout = defop(Dropout)


# ---- batch normalization ------------------------------------------------------------------------------------------


def _update(buffer: Any, value, momentum: float) -> None:
    """buffer ← (1 − momentum) · buffer + momentum · value, in place and outside the graph."""
    if isinstance(buffer, Tensor):
        buffer.mul_(1 - momentum).add_(value.astype(buffer.dtype, copy=False), alpha=momentum)
    else:
        buffer *= 1 - momentum
        buffer += momentum * value


class BatchNorm(Function):
    """y = (x − μ) / √(σ² + ε) · γ + β, per channel (axis 1) over the batch and every spatial position.

    input (N, C) or (N, C, *); weight γ and bias β (C,) or None. With ``training`` μ and σ² are the batch's
    (σ² biased) and ``running_mean`` / ``running_var`` (C,), if given, move towards them by ``momentum``
    (the variance unbiased), in place and outside the graph; otherwise the running statistics are used.
    Backward, with x̂ the normalized input and n values per channel:
        dx = γ/√(σ² + ε) · (g − mean(g) − x̂ · mean(g · x̂))   (training),   γ/√(σ² + ε) · g   (running stats)
        dγ = Σ g · x̂,   dβ = Σ g
    """

    inputs = ("x", "weight", "bias")

    def forward(ctx, x, weight=None, bias=None, running_mean=None, running_var=None, training=False,
                momentum=0.1, eps=1e-5):
        if x.ndim < 2:
            raise ValueError(f"batch_norm: expected input of shape (N, C) or (N, C, *), got shape {x.shape}")
        c = x.shape[1]
        for name, a in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
            if a is not None and tuple(a.shape) != (c,):
                raise RuntimeError(f"batch_norm: {name} of shape {tuple(a.shape)} does not match input of shape "
                                   f"{x.shape} (expected ({c},))")
        axes = ctx.axes = (0,) + tuple(range(2, x.ndim))
        bshape = ctx.bshape = (1, c) + (1,) * (x.ndim - 2)
        n = x.size // c if c else 0
        ctx.training, ctx.eps = training, eps
        if training:
            if n <= 1:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                                 f"of shape {x.shape}")
            mu = x.mean(axis=axes, keepdims=True)
            xc = x - mu
            var = (xc * xc).mean(axis=axes, keepdims=True)
            if running_mean is not None:
                _update(running_mean, mu.reshape(c), momentum)
            if running_var is not None:
                _update(running_var, var.reshape(c) * (n / (n - 1)), momentum)
        else:
            if running_mean is None or running_var is None:
                raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
            rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
            rv = running_var.data if isinstance(running_var, Tensor) else running_var
            ctx.center = rm.reshape(bshape).astype(x.dtype, copy=False)
            xc = x - ctx.center
            var = rv.reshape(bshape).astype(x.dtype, copy=False)
        ctx.invstd = 1 / xp.sqrt(var + x.dtype.type(eps))
        y = ctx.xhat = xc * ctx.invstd
        if weight is not None:
            y = y * weight.reshape(bshape)
        if bias is not None:
            y = y + bias.reshape(bshape)
        return y

    def backward(ctx, g):
        args = ctx.args  # (a property that checks versions: read once)
        x, weight = args[0], args[1] if len(args) > 1 else None
        need = list(ctx.needs_input_grad) + [False] * 2
        axes, bshape = ctx.axes, ctx.bshape
        if ctx.create_graph:  # the statistics as functions of x, so that they are differentiated too
            if ctx.training:
                xc = x - mean(x, axes, True)
                invstd = 1 / sqrt(mean(xc * xc, axes, True) + ctx.eps)
            else:
                invstd, xc = ctx.invstd, x - ctx.center
            xhat = xc * invstd
        else:
            xhat, invstd = ctx.xhat, ctx.invstd
        dxhat = g * weight.reshape(bshape) if weight is not None else g
        dx = dw = db = None
        if need[0]:
            if ctx.training:
                dx = invstd * (dxhat - mean(dxhat, axes, True) - xhat * mean(dxhat * xhat, axes, True))
            else:
                dx = dxhat * invstd
        if need[1]:
            dw = sum(g * xhat, axes)
        if need[2]:
            db = sum(g, axes)
        return dx, dw, db

    examples = staticmethod(lambda r: [
        ((randn(r, 4, 3), randn(r, 3), randn(r, 3)), dict(training=True)),
        ((randn(r, 3, 2, 2, 2), randn(r, 2), randn(r, 2)),
         dict(training=True, running_mean=randn(r, 2), running_var=r.uniform(0.5, 2, 2), momentum=0.2)),
        ((randn(r, 2, 3, 4), randn(r, 3), randn(r, 3)),
         dict(running_mean=randn(r, 3), running_var=r.uniform(0.5, 2, 3))),
        ((randn(r, 5, 2),), dict(training=True, eps=1e-3)),
    ])


batch_norm = defop(BatchNorm, "batch_norm")
