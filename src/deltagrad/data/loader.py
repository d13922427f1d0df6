"""``DataLoader``: minibatches from a dataset, shuffled by a seeded generator, as in PyTorch.

For datasets held in arrays (``TensorDataset`` and subsets of it) each epoch costs one gather of the
shuffled examples, and each batch is a slice of it: no per-example Python work in the training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from deltagrad import random as _random
from deltagrad.data.dataset import Dataset, can_gather
from deltagrad.tensor import Tensor


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of examples into a batch: tuples field by field, tensors/arrays/numbers along a new dim 0."""
    first = batch[0]
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate([b[k] for b in batch]) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, Tensor):
        return Tensor._make(np.stack([b.data for b in batch]), None)
    if isinstance(first, np.ndarray | np.generic):
        return Tensor._make(np.stack(batch), None)
    if isinstance(first, bool | int | float):
        return Tensor(np.asarray(batch, dtype=np.float32 if isinstance(first, float) else None))
    raise TypeError(f"default_collate: cannot batch examples of type {type(first).__name__}; pass collate_fn")


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` examples.

    ``shuffle=True`` draws a new order every epoch from ``generator`` (a ``numpy.random.Generator``; without
    one, from deltagrad's global generator, so ``deltagrad.manual_seed`` fixes it). ``drop_last=True`` skips
    a last, smaller batch. Batches of a ``TensorDataset`` are tuples of tensors ``(x, y)`` with shapes
    ``(B, ...)``.

    >>> loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
    ...                     generator=np.random.default_rng(0))
    >>> for xb, yb in loader: ...
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 generator: np.random.Generator | None = None,
                 collate_fn: Callable[[list[Any]], Any] | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator should be a numpy.random.Generator, got {type(generator).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self.generator if self.generator is not None else _random.default_generator()
        return rng.permutation(n)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        n, bs = len(order), self.batch_size
        stop = n - n % bs if self.drop_last else n
        if self.collate_fn is None and can_gather(self.dataset):
            arrays = self.dataset.gather(order)  # type: ignore[attr-defined]
            for i in range(0, stop, bs):
                yield tuple(Tensor._make(a[i:i + bs], None) for a in arrays)
            return
        collate = self.collate_fn or default_collate
        for i in range(0, stop, bs):
            yield collate([self.dataset[int(j)] for j in order[i:i + bs]])
