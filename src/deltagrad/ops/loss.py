"""Loss ops: each loss is one node, reduction included (``reduction='mean' | 'sum' | 'none'``, as PyTorch).

Backward of a reduced loss is the per-element derivative times ``s``: the upstream gradient g, divided by
the mean's denominator for ``'mean'``, or g per element for ``'none'``. The log-likelihood losses are
computed from log-softmax / softplus forms, so huge logits give finite losses and gradients.
"""

from __future__ import annotations

from typing import Any

from deltagrad.autograd.function import Function, defop, is_tensor
from deltagrad.backend import arange, softmax_cross_entropy, softmax_cross_entropy_backward, xp
from deltagrad.ops._util import const, randn
from deltagrad.ops.activation import log_softmax, softmax
from deltagrad.ops.elementwise import abs, clamp, exp, log, relu, sigmoid
from deltagrad.ops.reduce import sum
from deltagrad.ops.shape import reshape

__all__ = ["mse_loss", "euclidean_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_same_shape(name: str, input, target) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target of shape {tuple(target.shape)} does not match input of shape "
                         f"{tuple(input.shape)}; reshape one of them (broadcasting a loss is almost always a bug)")


def reduce_loss(loss, reduction: str, denominator: Any = None):
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return xp.asarray(total)
    return xp.asarray(total / (loss.size if denominator is None else denominator), dtype=loss.dtype)


def scale(g, reduction: str, denominator: Any):
    """The factor every per-element derivative is multiplied by."""
    return g / denominator if reduction == "mean" else g


def _softplus(z):
    """log(1 + eᶻ) without overflow: max(z, 0) + log(1 + e^−|z|) (ops, so it can be differentiated)."""
    return relu(z) + log(1 + exp(-abs(z)))


# ---- regression --------------------------------------------------------------------------------------------------


class MSELoss(Function):
    """ℓ = (x − y)², reduced;  dx = 2 (x − y) · s,  dy = −dx"""

    inputs = ("input", "target")

    def forward(ctx, input, target, reduction="mean"):
        check_reduction("mse_loss", reduction)
        check_same_shape("mse_loss", input, target)
        ctx.reduction, ctx.n = reduction, input.size
        d = input - target
        return reduce_loss(d * d, reduction)

    def backward(ctx, g):
        x, y = ctx.args
        dx = (x - y) * (2 * scale(g, ctx.reduction, ctx.n))
        return dx, -dx if ctx.needs_input_grad[1] else None

    examples = staticmethod(lambda r: [((randn(r, 3, 4), randn(r, 3, 4)), {}),
                                       ((randn(r, 5), randn(r, 5)), dict(reduction="sum")),
                                       ((randn(r, 2, 3), randn(r, 2, 3)), dict(reduction="none"))])


class EuclideanLoss(Function):
    """The notes' Euclidean cost ½‖x − y‖²;  dx = (x − y) · s,  dy = −dx

    ``reduction='sum'`` (default) gives ½ Σ (x − y)² over all elements; ``'mean'`` averages the per-sample
    costs ½‖xᵢ − yᵢ‖² over the batch (first) dimension; ``'none'`` returns them, shape (N,). A 0-D or 1-D
    input is one sample.

    >>> euclidean_loss(deltagrad.tensor([1.0, 0.1]), deltagrad.tensor([0.5, 0.5]))   # ½(0.25 + 0.16) = 0.205
    """

    inputs = ("input", "target")

    def forward(ctx, input, target, reduction="sum"):
        check_reduction("euclidean_loss", reduction)
        check_same_shape("euclidean_loss", input, target)
        ctx.reduction = reduction
        ctx.n = input.shape[0] if input.ndim >= 2 else 1
        d = input - target
        half = d * d * input.dtype.type(0.5) if input.dtype.kind == "f" else d * d * 0.5
        if reduction == "none":
            return half.sum(axis=tuple(range(1, input.ndim))) if input.ndim >= 2 else xp.asarray(half.sum())
        return reduce_loss(half, reduction, ctx.n)

    def backward(ctx, g):
        x, y = ctx.args
        if ctx.reduction == "none" and x.ndim >= 2:
            g = reshape(g, (ctx.n,) + (1,) * (x.ndim - 1))
        dx = (x - y) * scale(g, ctx.reduction, ctx.n)
        return dx, -dx if ctx.needs_input_grad[1] else None

    examples = staticmethod(lambda r: [((randn(r, 3, 4), randn(r, 3, 4)), {}),
                                       ((randn(r, 4, 2), randn(r, 4, 2)), dict(reduction="mean")),
                                       ((randn(r, 2, 3, 2), randn(r, 2, 3, 2)), dict(reduction="none")),
                                       ((randn(r, 5), randn(r, 5)), dict(reduction="none"))])


mse_loss = defop(MSELoss, "mse_loss")
euclidean_loss = defop(EuclideanLoss, "euclidean_loss")


# ---- classification from class scores ------------------------------------------------------------------------------


def _batched(name: str, input, target, probabilities: bool):
    """Input (N, C, *d) and target (N, *d), or (N, C, *d) for probabilities; unbatched (C,) becomes (1, C)."""
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have a class dimension, got a 0-D input")
    unbatched = input.ndim == 1
    x = input[None] if unbatched else input
    t = target[None] if unbatched else target
    expected = x.shape if probabilities else x.shape[:1] + x.shape[2:]
    if tuple(t.shape) != tuple(expected):
        kind = "probabilities of the input's shape" if probabilities else "class indices of shape (N, *d)"
        raise ValueError(f"{name}: target of shape {tuple(target.shape)} does not match input of shape "
                         f"{tuple(input.shape)} (expected {kind}: {tuple(expected[1:] if unbatched else expected)})")
    return x, t, unbatched


def _class_targets(name: str, x, t, weight, ignore_index: int):
    """valid mask, target indices made safe for indexing, and the weight of each target (0 where ignored)."""
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: class-index targets must be integers, got dtype {t.dtype}")
    c = x.shape[1]
    valid = t != ignore_index
    if valid.all():
        safe = t
    else:
        safe = xp.where(valid, t, 0)
    if safe.size and (safe.min() < 0 or safe.max() >= c):
        bad = safe.min() if safe.min() < 0 else safe.max()
        raise IndexError(f"{name}: target {int(bad)} is out of bounds for {c} classes")
    if weight is not None:
        if tuple(weight.shape) != (c,):
            raise ValueError(f"{name}: weight of shape {tuple(weight.shape)} does not match the {c} classes of "
                             f"input of shape {x.shape}")
        w_t = weight.astype(x.dtype, copy=False)[safe] * valid
    else:
        w_t = valid.astype(x.dtype)
    return valid, safe, w_t


def _onehot(safe, values, shape):
    """Zeros of ``shape`` (N, C, *d) with ``values`` (N, *d) at each target class."""
    a = xp.zeros(shape, values.dtype)
    xp.put_along_axis(a, safe[:, None], values[:, None], axis=1)
    return a


def _constant_weight(name: str, ctx) -> None:
    """A class weight is a constant (as in PyTorch): its gradient is never silently left out."""
    if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
        raise RuntimeError(f"{name} is not differentiable with respect to argument 'weight'; this input cannot "
                           "have requires_grad=True (detach() it)")


def _class_axis(w, ndim):
    return w.reshape((1, -1) + (1,) * (ndim - 2))


class CrossEntropy(Function):
    """Softmax cross-entropy from logits, one node: ℓᵢ = −Σ_c aᵢ_c log softmax(xᵢ)_c, where the target weights
    aᵢ are w_yᵢ·onehot(yᵢ) for class indices (blended with ε·w/C by ``label_smoothing`` ε) or w·p for
    probability targets p (blended with ε/C).  dx = s · (softmax(x) · Σ_c a_c − a)   (= (softmax − onehot)/N)

    input (N, C, *d) or (C,); target (N, *d) class indices (``ignore_index`` entries count for nothing) or
    probabilities shaped like the input. 'mean' divides by Σ w_yᵢ over the counted targets (class indices)
    or by the number of positions N·Πd (probabilities). Class ``weight`` is a constant (no gradient).
    """

    inputs = ("input", "target", "weight")

    def forward(ctx, input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        name = "cross_entropy"
        check_reduction(name, reduction)
        ctx.reduction, ctx.dtype = reduction, input.dtype
        if (input.ndim == 2 and target.ndim == 1 and target.dtype.kind in "iu" and weight is None
                and not label_smoothing and len(target) == len(input) and len(target)
                and not 0 <= ignore_index < input.shape[1]):
            loss = ctx._simple(input, target)
            if loss is not None:
                return loss
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
        probabilities = target.dtype.kind == "f"
        x, t, ctx.unbatched = _batched(name, input, target, probabilities)
        c = x.shape[1]
        eps = label_smoothing
        z = x - x.max(axis=1, keepdims=True)
        e = xp.exp(z)
        sum_e = e.sum(axis=1, keepdims=True)
        ctx.prob = e / sum_e
        ctx.probabilities, ctx.eps, ctx.simple = probabilities, eps, False
        weight = const(weight)
        wb = ctx.wb = None if weight is None else _class_axis(weight.astype(x.dtype, copy=False), x.ndim)
        logp = z - xp.log(sum_e)
        if probabilities:
            a = t * (1 - eps) + eps / c if eps else t
            a = a * wb if wb is not None else a
            loss = -(logp * a).sum(axis=1)
            den = loss.size
            ctx.target = a
        else:
            valid, safe, w_t = _class_targets(name, x, t, weight, ignore_index)
            loss = -xp.take_along_axis(logp, safe[:, None], axis=1)[:, 0] * w_t
            if eps:
                smooth = -(logp * wb).sum(axis=1) if wb is not None else -logp.sum(axis=1)
                loss = (1 - eps) * loss + (eps / c) * smooth * valid
            den = w_t.sum()
            ctx.target = (safe, w_t, valid)
        ctx.den = den
        if ctx.unbatched and reduction == "none":
            return loss[0]
        return reduce_loss(loss, reduction, den)

    def _simple(ctx, x, t):
        """The hot path of a classifier's training step: (N, C) logits, no weights or smoothing, class indices
        that turn out all in range (None otherwise). ℓᵢ = log Σ e^zᵢ − zᵢ[yᵢ] with z = x − max x, by the
        backend's kernel; the softmax is formed in backward."""
        out = softmax_cross_entropy(x, t, ctx.reduction == "none")
        if out is None:
            return None
        loss, ctx.e, ctx.sum_e = out
        ctx.simple, ctx.probabilities, ctx.unbatched, ctx.eps = True, False, False, 0.0
        ctx.target, ctx.den = (arange(len(t)), t), len(t)
        if ctx.reduction == "none":
            return loss
        return xp.asarray(loss if ctx.reduction == "sum" else loss / ctx.den, dtype=x.dtype)

    def _weights(ctx, t, shape, dtype):
        """a (N, C, *d), the weight of each class's log-probability in each position's loss."""
        if ctx.probabilities:
            if not is_tensor(t):
                return ctx.target
            a = t * (1 - ctx.eps) + ctx.eps / shape[1] if ctx.eps else t  # a function of t: differentiated again
            return a * ctx.wb if ctx.wb is not None else a
        if ctx.simple:
            rows, safe = ctx.target
            a = xp.zeros(shape, dtype)
            a[rows, safe] = 1
            return a
        safe, w_t, valid = ctx.target
        a = _onehot(safe, (1 - ctx.eps) * w_t, shape)
        if ctx.eps:
            a += (ctx.eps / shape[1]) * (ctx.wb if ctx.wb is not None else dtype.type(1)) * valid[:, None]
        return a

    def backward(ctx, g):
        _constant_weight("cross_entropy", ctx)
        s = scale(g, ctx.reduction, ctx.den)
        if ctx.simple and not ctx.create_graph:  # (softmax − onehot) · s without building the one-hot
            return softmax_cross_entropy_backward(ctx.e, ctx.sum_e, ctx.target[1], s), None
        x, t = ctx.args[:2]
        if ctx.unbatched:
            x = x.reshape(1, x.shape[0])
            t = t.reshape(1, t.shape[0]) if ctx.probabilities else t
        if ctx.reduction == "none":
            s = s.reshape((x.shape[0], 1) + tuple(x.shape[2:]))
        shape = tuple(x.shape)
        dtype = ctx.dtype
        a = ctx._weights(t, shape, dtype)
        dx = dt = None
        if ctx.needs_input_grad[0]:
            p = softmax(x, 1) if ctx.create_graph else ctx.prob
            dx = s * (p * sum(a, 1, True) - a)
            if ctx.unbatched:
                dx = dx.reshape(shape[1:])
        if ctx.probabilities and ctx.needs_input_grad[1]:
            w = (1 - ctx.eps) * (ctx.wb if ctx.wb is not None else dtype.type(1))
            dt = -s * w * log_softmax(x, 1)
            if ctx.unbatched:
                dt = dt.reshape(shape[1:])
        return dx, dt

    examples = staticmethod(lambda r: [
        ((randn(r, 4, 3) * 2, r.integers(0, 3, 4)), {}),
        ((randn(r, 3, 4), r.integers(0, 4, 3)), dict(weight=r.uniform(0.5, 2, 4), reduction="sum")),
        ((randn(r, 2, 3, 2), r.integers(0, 3, (2, 2))), dict(reduction="none", label_smoothing=0.2)),
        ((randn(r, 5, 3), xp.array([0, -100, 2, 1, -100])), dict(weight=r.uniform(0.5, 2, 3), label_smoothing=0.1)),
        ((randn(r, 3, 4), r.dirichlet(xp.ones(4), 3)), dict(label_smoothing=0.3)),   # probability targets
        ((randn(r, 4), xp.array(2)), {}),                                             # unbatched
    ])


class NLLLoss(Function):
    """Negative log-likelihood of log-probabilities: ℓᵢ = −w_yᵢ · x[i, yᵢ];  dx = −s · w_yᵢ at each target

    input (N, C, *d) or (C,) of log-probabilities (e.g. ``log_softmax``); target (N, *d) class indices.
    'mean' divides by Σ w_yᵢ over the targets that are not ``ignore_index``. Class ``weight`` is a constant.
    """

    inputs = ("input", "target", "weight")

    def forward(ctx, input, target, weight=None, ignore_index=-100, reduction="mean"):
        name = "nll_loss"
        check_reduction(name, reduction)
        x, t, ctx.unbatched = _batched(name, input, target, False)
        valid, safe, w_t = _class_targets(name, x, t, const(weight), ignore_index)
        loss = -xp.take_along_axis(x, safe[:, None], axis=1)[:, 0] * w_t
        ctx.target, ctx.shape, ctx.reduction, ctx.den = (safe, w_t), x.shape, reduction, w_t.sum()
        if ctx.unbatched and reduction == "none":
            return loss[0]
        return reduce_loss(loss, reduction, ctx.den)

    def backward(ctx, g):
        _constant_weight("nll_loss", ctx)
        safe, w_t = ctx.target
        s = scale(g, ctx.reduction, ctx.den)
        if ctx.reduction == "none":
            s = s.reshape((ctx.shape[0], 1) + tuple(ctx.shape[2:]))
        dx = -s * _onehot(safe, w_t, ctx.shape)
        return dx.reshape(ctx.shape[1:]) if ctx.unbatched else dx

    examples = staticmethod(lambda r: [
        ((randn(r, 4, 3), r.integers(0, 3, 4)), {}),
        ((randn(r, 2, 3, 2), xp.array([[0, -100], [2, 1]])), dict(weight=r.uniform(0.5, 2, 3), reduction="none")),
        ((randn(r, 5, 3), r.integers(0, 3, 5)), dict(weight=r.uniform(0.5, 2, 3), reduction="sum")),
    ])


cross_entropy = defop(CrossEntropy, "cross_entropy")
nll_loss = defop(NLLLoss, "nll_loss")


# ---- binary classification ---------------------------------------------------------------------------------------


class BinaryCrossEntropy(Function):
    """ℓ = −w [y log x + (1 − y) log(1 − x)], each log clamped at −100 as PyTorch;
    dx = s · w (x − y) / max(x (1 − x), 1e-12),  dy = s · w (log(1 − x) − log x),  dw = s · ℓ / w"""

    inputs = ("input", "target", "weight")

    def forward(ctx, input, target, weight=None, reduction="mean"):
        name = "binary_cross_entropy"
        check_reduction(name, reduction)
        check_same_shape(name, input, target)
        if input.size and not ((input >= 0) & (input <= 1)).all():
            raise RuntimeError(f"{name}: all elements of input should be between 0 and 1 (probabilities; "
                               "use binary_cross_entropy_with_logits for raw scores)")
        ctx.reduction, ctx.n = reduction, input.size
        low = input.dtype.type(-100)
        loss = -(target * xp.maximum(xp.log(input), low) + (1 - target) * xp.maximum(xp.log(1 - input), low))
        ctx.unweighted = loss
        if weight is not None:
            loss = loss * weight
        return reduce_loss(loss, reduction)

    def backward(ctx, g):
        x, y = ctx.args[:2]
        w = ctx.args[2] if len(ctx.args) > 2 else None
        need = list(ctx.needs_input_grad) + [False]
        s = scale(g, ctx.reduction, ctx.n)
        sw = s * w if w is not None else s
        dx = sw * (x - y) / clamp(x * (1 - x), min=1e-12) if need[0] else None
        dy = sw * (log(1 - x) - log(x)) if need[1] else None
        dw = None
        if need[2]:
            dw = s * (ctx.unweighted if not ctx.create_graph else
                      -(y * clamp(log(x), min=-100) + (1 - y) * clamp(log(1 - x), min=-100)))
        return dx, dy, dw

    examples = staticmethod(lambda r: [
        ((r.uniform(0.05, 0.95, (3, 4)), r.uniform(0, 1, (3, 4))), {}),
        ((r.uniform(0.05, 0.95, (5,)), (r.uniform(0, 1, 5) > 0.5).astype(float), r.uniform(0.5, 2, 5)),
         dict(reduction="sum")),
        ((r.uniform(0.05, 0.95, (2, 3)), r.uniform(0, 1, (2, 3)), r.uniform(0.5, 2, (2, 3))),
         dict(reduction="none")),
    ])


class BinaryCrossEntropyWithLogits(Function):
    """ℓ = w [(1 − y) x + (1 + (p − 1) y) softplus(−x)] = −w [p y log σ(x) + (1 − y) log(1 − σ(x))], stable for
    any logit x (p = ``pos_weight``, broadcast along the last axis; 1 if None).
    dx = s · w (σ(x)(p y + 1 − y) − p y),  dy = s · w (p softplus(−x) − softplus(x)),
    dw = s · ℓ / w,  dp = s · w y softplus(−x)"""

    inputs = ("input", "target", "weight", "pos_weight")

    def forward(ctx, input, target, weight=None, pos_weight=None, reduction="mean"):
        name = "binary_cross_entropy_with_logits"
        check_reduction(name, reduction)
        check_same_shape(name, input, target)
        ctx.reduction, ctx.n = reduction, input.size
        sp_neg = xp.maximum(-input, 0) + xp.log1p(xp.exp(-xp.abs(input)))   # softplus(−x), never overflows
        if pos_weight is None:
            loss = (1 - target) * input + sp_neg
        else:
            loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * sp_neg
        ctx.unweighted = loss
        if weight is not None:
            loss = loss * weight
        return reduce_loss(loss, reduction)

    def backward(ctx, g):
        args = ctx.args
        x, y = args[0], args[1]
        w = args[2] if len(args) > 2 else None
        p = args[3] if len(args) > 3 else None
        need = list(ctx.needs_input_grad) + [False, False]
        s = scale(g, ctx.reduction, ctx.n)
        sw = s * w if w is not None else s
        dx = dy = dw = dp = None
        if need[0]:
            dx = sw * (sigmoid(x) - y) if p is None else sw * (sigmoid(x) * (p * y + 1 - y) - p * y)
        if need[1]:
            dy = -sw * x if p is None else sw * (p * _softplus(-x) - _softplus(x))
        if need[2]:
            if ctx.create_graph:
                unweighted = (1 - y) * x + (_softplus(-x) if p is None else (1 + (p - 1) * y) * _softplus(-x))
            else:
                unweighted = ctx.unweighted
            dw = s * unweighted
        if need[3]:
            dp = sw * y * _softplus(-x)
        return dx, dy, dw, dp

    examples = staticmethod(lambda r: [
        ((randn(r, 3, 4) * 3, r.uniform(0, 1, (3, 4))), {}),
        ((randn(r, 4, 3), (r.uniform(0, 1, (4, 3)) > 0.5).astype(float), r.uniform(0.5, 2, (4, 3)),
          r.uniform(0.5, 3, 3)), dict(reduction="sum")),
        ((randn(r, 2, 3), r.uniform(0, 1, (2, 3)), None, r.uniform(0.5, 3, 3)), dict(reduction="none")),
    ])


binary_cross_entropy = defop(BinaryCrossEntropy, "binary_cross_entropy")
binary_cross_entropy_with_logits = defop(BinaryCrossEntropyWithLogits, "binary_cross_entropy_with_logits")
