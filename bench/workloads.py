"""The three training workloads of BENCHMARKS.md: same data, shapes, initial scale and optimizer everywhere.

SGD lr 0.05 momentum 0.9, softmax cross-entropy, float32, CPU. The figure is training steps per second after
10 warm-up steps.
"""

from __future__ import annotations

import numpy as np

WORKLOADS = {
    # name: layer sizes (or "lenet"), batch size, timed steps
    "digits-mlp": dict(sizes=[64, 128, 10], batch=32, steps=400),
    "mnist-mlp": dict(sizes=[784, 512, 256, 10], batch=128, steps=100),
    "lenet": dict(sizes="lenet", batch=64, steps=40),
}
WARMUP = 10
LR, MOMENTUM = 0.05, 0.9


def data(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (float32) and class labels (int64): the 8×8 digits, or MNIST-sized random data."""
    w = WORKLOADS[name]
    if name == "digits-mlp":  # the digits embedded in deltagrad (the same set scikit-learn ships), pixels / 16
        from deltagrad.data.builtin import digits

        raw = digits()
        return raw.x.reshape(len(raw.x), -1), raw.y
    rng = np.random.default_rng(seed)
    n = w["batch"] * 8
    shape = (n, 1, 28, 28) if name == "lenet" else (n, w["sizes"][0])
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


def batches(x: np.ndarray, y: np.ndarray, batch: int, steps: int):
    """``steps`` consecutive minibatches, wrapping around the data."""
    i = 0
    for _ in range(steps):
        if i + batch > len(x):
            i = 0
        yield x[i:i + batch], y[i:i + batch]
        i += batch


def flops_per_step(name: str) -> float:
    """Multiply-add FLOPs of forward + backward (3× the forward matmul FLOPs)."""
    w = WORKLOADS[name]
    b = w["batch"]
    if w["sizes"] == "lenet":
        conv1 = 2 * 6 * 24 * 24 * 25
        conv2 = 2 * 16 * 8 * 8 * 6 * 25
        fc = 2 * (256 * 120 + 120 * 84 + 84 * 10)
        return 3 * b * (conv1 + conv2 + fc)
    s = w["sizes"]
    return 3 * b * sum(2 * a * c for a, c in zip(s[:-1], s[1:]))
