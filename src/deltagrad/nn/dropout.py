"""``Dropout``: zero activations at random while training (a regularizer); the identity in eval mode."""

from __future__ import annotations

from deltagrad.nn import functional as F
from deltagrad.nn.module import Module
from deltagrad.tensor import Tensor


class Dropout(Module):
    """In training mode: y = x ∘ m / (1 − p), m ~ Bernoulli(1 − p) per element (inverted dropout, so the
    expected activation is unchanged); in eval mode y = x. Backprop to input: δ ∘ m / (1 − p).

    The mask is drawn from ``deltagrad.random.default_generator()`` (``manual_seed`` makes it repeatable).
    ``inplace`` is accepted for PyTorch compatibility; the result is always a new tensor (deltagrad does
    not record in-place operations), which gives the same values.

    >>> drop = Dropout(p=0.5)
    >>> drop.eval()(deltagrad.ones(4)).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
