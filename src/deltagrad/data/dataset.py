"""Datasets with PyTorch's names: ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``, ``random_split``.

A dataset maps an index ``i`` to one example (a tuple of tensors for ``TensorDataset``). Datasets whose
examples live in arrays also offer ``gather(indices)``: a whole batch by one fancy-indexing per array, which
is what makes the ``DataLoader`` cheap per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deltagrad import random as _random
from deltagrad.tensor import Tensor


class Dataset:
    """An indexable collection of examples: subclasses define ``__getitem__(i)`` and ``__len__()``.

    >>> class Squares(Dataset):
    ...     def __len__(self): return 10
    ...     def __getitem__(self, i): return deltagrad.tensor(float(i)), deltagrad.tensor(float(i * i))
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Examples ``(t[i] for t in tensors)``: all tensors share their first dimension.

    Shapes: ``tensors[k]`` is ``(N, ...)``; ``dataset[i]`` is a tuple with ``tensors[k][i]``.

    >>> ds = TensorDataset(deltagrad.randn(100, 3), deltagrad.randint(0, 2, (100,)))
    >>> x, y = ds[0]; len(ds)
    100
    """

    def __init__(self, *tensors: Tensor | np.ndarray) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
        n = arrays[0].shape[0] if arrays[0].ndim else None
        for a in arrays:
            if a.ndim == 0 or a.shape[0] != n:
                raise ValueError("TensorDataset: all tensors need the same first dimension, got shapes "
                                 + ", ".join(str(tuple(b.shape)) for b in arrays))
        self.arrays: tuple[np.ndarray, ...] = tuple(arrays)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(Tensor(a) for a in self.arrays)

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(Tensor._make(a[index], None) for a in self.arrays)

    def gather(self, indices: np.ndarray | slice) -> tuple[np.ndarray, ...]:
        """The arrays of the examples at ``indices`` (one batch), without making a tensor per example."""
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The examples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def gather(self, indices: np.ndarray | slice) -> tuple[np.ndarray, ...]:
        """A batch by one indexing per array (only where the wrapped dataset can ``gather`` too)."""
        if not can_gather(self.dataset):
            raise TypeError(f"{type(self.dataset).__name__} has no gather(); index it one example at a time")
        return self.dataset.gather(self.indices[indices])  # type: ignore[attr-defined]


def can_gather(ds: Dataset) -> bool:
    """Whether ``ds.gather(indices)`` gives whole batches as arrays."""
    if isinstance(ds, Subset):
        return can_gather(ds.dataset)
    return callable(getattr(ds, "gather", None))


class ConcatDataset(Dataset):
    """The examples of several datasets one after another."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} examples")
        k = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = self.cumulative_sizes[k - 1] if k else 0
        return self.datasets[k][index - start]


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: np.random.Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (the remainder left by
    flooring goes one example at a time to the first subsets, as in PyTorch). ``generator`` is a
    ``numpy.random.Generator``; without one, deltagrad's global generator draws the permutation.

    >>> train, val = random_split(ds, [0.8, 0.2], generator=np.random.default_rng(0))
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0):
        for x in lengths:
            if not 0 <= x <= 1:
                raise ValueError(f"random_split: fraction {x} is not between 0 and 1")
        counts = [int(math.floor(n * x)) for x in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not isinstance(x, (int, np.integer)) or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative integers or fractions summing to 1, "
                         f"got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, not to the dataset's {n}")
    rng = generator if generator is not None else _random.default_generator()
    perm = rng.permutation(n)
    out, start = [], 0
    for m in lengths:
        out.append(Subset(dataset, perm[start:start + m]))
        start += m
    return out
