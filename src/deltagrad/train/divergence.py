"""Why a training step went non-finite: what became NaN or infinite first, and advice that fits that cause.

The fit loop tests only two numbers per step (the loss, and the sum of the squared gradient norms); this
module looks at the rest only after one of them is not finite, so healthy training pays nothing for it.
The causes, in the order a step meets them:

1. the batch: inputs (or regression targets) that are NaN or infinite: the data, not the learning rate;
2. a weight (or a batch-norm statistic) that was already non-finite before the step: the previous update
   overflowed, so the learning rate is too large;
3. the loss itself, from finite inputs and weights: the forward pass overflowed (at the first step, with the
   initial weights, the data's scale; later, weights grown too large);
4. a gradient, from a finite loss: the backward pass overflowed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deltagrad import nn
from deltagrad.tensor import Tensor

LR_ADVICE = "Try a smaller --lr (optimizer.lr) or train.clip_grad_norm"
HUGE_INPUT = 1e6  # normalized inputs are of order 1
SCALE_ADVICE = ("The data's scale is too large for float32: normalize the inputs (data.normalize = true) and "
                "scale large regression targets down")


def _nonfinite(a: np.ndarray) -> int:
    return int(a.size - np.count_nonzero(np.isfinite(a))) if a.dtype.kind in "fc" else 0


def _largest(arrays: Sequence[np.ndarray]) -> float:
    return max((float(np.abs(a).max()) for a in arrays if a.size and a.dtype.kind == "f"), default=0.0)


def explain(model: nn.Module, xb: Tensor, yb: Tensor, first_step: bool, loss: float | None = None,
            params: Sequence[Tensor] = ()) -> str:
    """The sentence that follows "training diverged: ...": what was non-finite first, and what to do.

    ``loss`` is the loss when it was the loss that was not finite; otherwise the loss was finite and a
    gradient (of one of ``params``) or the gradient norm was not. ``first_step``: no update has been made yet,
    so the weights are the initial ones and the learning rate cannot be the cause.
    """
    for what, array in (("input batch", xb.data), ("batch's targets", yb.data)):
        bad = _nonfinite(array)
        if bad:
            return (f"First non-finite: the {what} ({bad} NaN or infinite value{'s' if bad != 1 else ''} among "
                    f"{array.size}); the data are at fault, not the learning rate: check the data set and its "
                    "normalization (data.mean, data.std)")
    state = model.state_dict()
    for name, t in state.items():
        if _nonfinite(t.data):
            return (f"First non-finite: {name}, already before this step (the update before it overflowed "
                    f"{t.data.dtype}). " + LR_ADVICE)
    weights = f"largest |weight| {_largest([t.data for t in state.values()]):.3g}"
    big = _largest([xb.data])
    data = f"largest |input| {big:.3g}"
    # inputs this large overflow float32 within a few layers whatever the learning rate
    scale = (" " + SCALE_ADVICE) if big > HUGE_INPUT else ""
    if loss is not None:
        if first_step:
            return (f"First non-finite: the loss itself, from finite inputs and the initial weights ({data}, "
                    f"{weights}): the forward pass overflowed. " + SCALE_ADVICE)
        return (f"First non-finite: the loss itself, from finite inputs and weights ({data}, {weights}): the "
                "forward pass overflowed as the weights grew. " + LR_ADVICE + scale)
    names = {id(p): n for n, p in model.named_parameters()}
    bad_grad = next((names.get(id(p), "a parameter") for p in params
                     if p.grad is not None and _nonfinite(p.grad.data)), None)
    if bad_grad is None:
        return ("First non-finite: the gradient norm, although every gradient is finite (their squares overflow). "
                "Try a smaller --lr (optimizer.lr)")
    if first_step:
        return (f"First non-finite: the gradient of {bad_grad}, from a finite loss, inputs and initial weights "
                f"({data}, {weights}): the backward pass overflowed. " + SCALE_ADVICE)
    return (f"First non-finite: the gradient of {bad_grad}, from a finite loss, inputs and weights ({data}, "
            f"{weights}): the backward pass overflowed. " + LR_ADVICE + scale)
