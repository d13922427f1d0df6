"""Loss modules: the cost C(x(L), y) at the top of the network, where backprop starts.

Each holds its settings (``reduction``, class weights...) and calls ``deltagrad.nn.functional``.
``reduction`` is ``'mean'`` (average over elements, or over the weights of the targets for the
classification losses), ``'sum'`` or ``'none'`` (one value per element/sample).
"""

from __future__ import annotations

from typing import Any

from deltagrad.nn import functional as F
from deltagrad.nn.module import Module
from deltagrad.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _as_buffer(value: Any, name: str, owner: str) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    try:
        return Tensor(value)
    except TypeError:
        raise TypeError(f"{owner}: {name} must be a Tensor or array, got {type(value).__name__}") from None


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return ""


class _WeightedLoss(_Loss):
    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _as_buffer(weight, "weight", type(self).__name__))


class MSELoss(_Loss):
    """Mean squared error: ℓ_i = (x_i − y_i)², reduced by ``reduction`` (mean by default).

    dL/dx = 2 (x − y) / n for the mean (n = number of elements). Shapes: input and target equal.

    >>> MSELoss()(deltagrad.tensor([1.0, 2.0]), deltagrad.tensor([0.0, 0.0])).item()
    2.5
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class EuclideanLoss(_Loss):
    """The lecture notes' Euclidean cost C = ½ ‖x − y‖² = ½ Σ_i (x_i − y_i)², whose gradient is simply
    dC/dx = x − y (the backward signal the notes start backprop with).

    ``reduction='sum'`` (default) is the formula above over the whole batch; ``'none'`` gives each sample's
    cost ½ ‖x_n − y_n‖² (shape (N,), summing over all but the first dimension); ``'mean'`` averages those
    over the batch.

    >>> EuclideanLoss()(deltagrad.tensor([1.0, 2.0]), deltagrad.tensor([0.0, 0.0])).item()
    2.5
    """

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.euclidean_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities p ∈ [0, 1]: ℓ_i = −w_i [y_i log p_i + (1 − y_i) log(1 − p_i)]
    (logs clamped at −100, as PyTorch). With p = sigmoid(z), dℓ/dz = p − y, as derived in the notes.

    Shapes: input and target equal; ``weight`` broadcasts to them. Prefer ``BCEWithLogitsLoss`` on logits.

    >>> round(BCELoss()(deltagrad.tensor([0.5]), deltagrad.tensor([1.0])).item(), 4)   # log 2
    0.6931
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(weight, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross-entropy in one stable step, on logits z:
    ℓ_i = −w_i [pos_weight · y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))];  dℓ/dz = σ(z) − y when unweighted.

    ``pos_weight`` (per class, broadcast over the last dimension) weighs positive examples. ``weight``
    and ``pos_weight`` are buffers, as in PyTorch.

    >>> round(BCEWithLogitsLoss()(deltagrad.tensor([0.0]), deltagrad.tensor([1.0])).item(), 4)   # log 2
    0.6931
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _as_buffer(weight, "weight", "BCEWithLogitsLoss"))
        self.register_buffer("pos_weight", _as_buffer(pos_weight, "pos_weight", "BCEWithLogitsLoss"))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax and negative log-likelihood in one stable step, on unnormalized scores (logits):

        ℓ_n = −w_{y_n} log softmax(x_n)_{y_n};   dℓ_n/dx_n = softmax(x_n) − onehot(y_n)  (unweighted)

    Shapes: input (N, C) or (N, C, d1, ...) or (C,); target class indices (N) / (N, d1, ...) as int64, or
    class probabilities shaped like the input. ``weight`` (C,) rescales classes; targets equal to
    ``ignore_index`` contribute nothing; ``label_smoothing`` ε mixes the target with the uniform
    distribution (1 − ε) onehot + ε/C. The mean divides by the summed weights of the counted targets.

    >>> loss = CrossEntropyLoss()
    >>> loss(deltagrad.zeros(2, 4), deltagrad.tensor([1, 3])).item()      # log 4
    1.3862943649291992
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood on log-probabilities (e.g. after ``LogSoftmax``): ℓ_n = −w_{y_n} x_{n, y_n}.

    Shapes as ``CrossEntropyLoss`` (class-index targets only). ``LogSoftmax`` followed by ``NLLLoss`` equals
    ``CrossEntropyLoss``.

    >>> NLLLoss()(deltagrad.tensor([[-1.0, -2.0]]), deltagrad.tensor([1])).item()
    2.0
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)
