"""Built-in data sets, no download: the 8×8 handwritten digits (the default), iris, and the lecture notes'
synthetic problems (XOR, two spirals, a noisy sine for regression).

Each loader returns a ``RawData``: every example of the set, before the fixed train/validation/test split
and the normalization that ``deltagrad.data.load_dataset`` applies. The synthetic sets are drawn from a
fixed seed, so they are the same data on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources

import numpy as np


@dataclass
class RawData:
    """All examples of a data set. ``x``: float32 ``(N, *input_shape)``; ``y``: int64 class labels ``(N,)``
    for classification or float32 targets ``(N, outputs)`` for regression."""

    x: np.ndarray
    y: np.ndarray
    task: str                                   # "classification" or "regression"
    description: str
    images: bool = False                        # normalized by one mean/std for all pixels (else per feature)
    classes: list = field(default_factory=list)  # the label of each class index, as the source writes it
    test_x: np.ndarray | None = None            # a set with its own test part (IDX files) gives it here
    test_y: np.ndarray | None = None


def _builtin_file(name: str) -> dict[str, np.ndarray]:
    ref = resources.files("deltagrad.data") / "builtin" / name
    with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def digits() -> RawData:
    """1,797 handwritten digits, 1×8×8 images with pixel values 0..16 scaled to [0, 1]; labels 0..9.

    The UCI "Optical Recognition of Handwritten Digits" test set (E. Alpaydin, C. Kaynak), CC BY 4.0.
    """
    z = _builtin_file("digits.npz")
    x = (z["images"].astype(np.float32) / np.float32(16.0))[:, None, :, :]
    return RawData(x, z["labels"].astype(np.int64), "classification",
                   "8x8 handwritten digits (UCI, Alpaydin & Kaynak; CC BY 4.0)", images=True,
                   classes=list(range(10)))


def iris() -> RawData:
    """150 iris flowers: 4 measurements in cm (sepal/petal length and width); 3 species.

    The UCI "Iris" data set (R. A. Fisher), CC BY 4.0.
    """
    z = _builtin_file("iris.npz")
    x = z["features_mm"].astype(np.float32) / np.float32(10.0)
    return RawData(x, z["labels"].astype(np.int64), "classification", "iris flowers (UCI, R. A. Fisher; CC BY 4.0)",
                   classes=["setosa", "versicolor", "virginica"])


def xor(n: int = 1000) -> RawData:
    """XOR: points near the corners of the unit square, labelled a XOR b (no line separates the classes)."""
    rng = np.random.default_rng(1001)
    bits = rng.integers(0, 2, size=(n, 2))
    x = (bits + rng.normal(0.0, 0.15, size=(n, 2))).astype(np.float32)
    return RawData(x, (bits[:, 0] ^ bits[:, 1]).astype(np.int64), "classification",
                   "noisy XOR in the plane (synthetic)", classes=[0, 1])


def spirals(n: int = 1000) -> RawData:
    """Two interleaved spirals in the plane, one per class (radius t, angle 3πt, the second turned by π)."""
    rng = np.random.default_rng(1002)
    label = rng.integers(0, 2, size=n)
    t = np.sqrt(rng.uniform(0.0, 1.0, size=n))       # sqrt: even density along the arms
    angle = 3 * np.pi * t + np.pi * label
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) + rng.normal(0.0, 0.02, size=(n, 2))
    return RawData(x.astype(np.float32), label.astype(np.int64), "classification", "two spirals (synthetic)",
                   classes=[0, 1])


def sine(n: int = 1000) -> RawData:
    """Regression: y = sin(x) + noise (σ = 0.1), x uniform in [−π, π]."""
    rng = np.random.default_rng(1003)
    x = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y = np.sin(x) + rng.normal(0.0, 0.1, size=(n, 1))
    return RawData(x.astype(np.float32), y.astype(np.float32), "regression", "noisy sine (synthetic regression)")


BUILTIN: dict[str, Callable[[], RawData]] = {
    "digits": digits,
    "iris": iris,
    "xor": xor,
    "spirals": spirals,
    "sine": sine,
}
