"""PyTorch counterparts of the loss ops: ``name -> f(torch, *args, **kwargs)``.

Class weights arrive as NumPy arrays (they are keyword arguments in the examples). deltagrad also gives
gradients for the BCE losses' ``weight`` / ``pos_weight``, which torch refuses to differentiate, so those
references are written out in torch operations.
"""


def _reduce(t, loss, reduction):
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _as_t(t, w):
    return None if w is None else t.tensor(w)


def _euclidean(t, x, y, reduction="sum"):
    half = 0.5 * (x - y) ** 2
    if reduction == "sum" or (reduction == "none" and x.ndim < 2):
        return half.sum()
    per_sample = half.reshape(x.shape[0], -1).sum(1)
    return per_sample.mean() if reduction == "mean" else per_sample


def _bce(t, x, y, weight=None, reduction="mean"):
    loss = t.nn.functional.binary_cross_entropy(x, y, reduction="none")
    return _reduce(t, loss if weight is None else loss * weight, reduction)


def _bce_logits(t, x, y, weight=None, pos_weight=None, reduction="mean"):
    if pos_weight is None:
        loss = t.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none")
    else:
        loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * t.nn.functional.softplus(-x)
    return _reduce(t, loss if weight is None else loss * weight, reduction)


REFERENCE = {
    "mse_loss": lambda t, x, y, **kw: t.nn.functional.mse_loss(x, y, **kw),
    "euclidean_loss": _euclidean,
    "cross_entropy": lambda t, x, y, weight=None, **kw: t.nn.functional.cross_entropy(x, y, _as_t(t, weight), **kw),
    "nll_loss": lambda t, x, y, weight=None, **kw: t.nn.functional.nll_loss(x, y, _as_t(t, weight), **kw),
    "binary_cross_entropy": _bce,
    "binary_cross_entropy_with_logits": _bce_logits,
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
