"""``Flatten`` (e.g. between the convolutional and the fully connected part of LeNet) and ``Unflatten``."""

from __future__ import annotations

from deltagrad.nn import functional as F
from deltagrad.nn.module import Module
from deltagrad.ops._util import normalize_dim
from deltagrad.tensor import Tensor


class Flatten(Module):
    """Merge dimensions ``start_dim`` … ``end_dim`` into one (a view: no data moves).

    Shapes: (N, C, H, W) → (N, C·H·W) with the defaults ``start_dim=1, end_dim=-1``, so the batch
    dimension stays. Backprop to input reshapes δ back.

    >>> Flatten()(deltagrad.zeros(2, 16, 5, 5)).shape
    (2, 400)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size`` (the inverse of ``Flatten``).

    >>> Unflatten(1, (16, 5, 5))(deltagrad.zeros(2, 400)).shape
    (2, 16, 5, 5)
    """

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        shape = input.shape
        d = normalize_dim(self.dim, len(shape))
        return input.reshape(shape[:d] + self.unflattened_size + shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
