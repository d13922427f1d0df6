"""An MLP's training step written out in plain NumPy, no framework: the floor a NumPy library is measured by.

The same step as the other frameworks run (ReLU layers, softmax cross-entropy averaged over the batch, SGD
with momentum as PyTorch applies it), in the plain NumPy a careful person would write by hand.
"""

from __future__ import annotations

import numpy as np

from bench.workloads import LR, MOMENTUM


class ByHand:
    """``step(x, y)``: one training step of a ReLU MLP with layer ``sizes``; returns the loss."""

    def __init__(self, sizes: list[int], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.weights = [(rng.uniform(-1, 1, (m, n)) / np.sqrt(n)).astype(np.float32)
                        for n, m in zip(sizes[:-1], sizes[1:])]                    # (out, in), as nn.Linear
        self.biases = [np.zeros(m, np.float32) for m in sizes[1:]]
        self.velocity = [np.zeros_like(p) for p in self.weights + self.biases]
        self.lr, self.momentum = np.float32(LR), np.float32(MOMENTUM)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        inputs, h = [], x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):   # forward, keeping each layer's input
            inputs.append(h)
            h = h @ w.T + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0)
        z = h - h.max(axis=1, keepdims=True)                            # softmax cross-entropy
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(-np.log(p[rows, y]).mean())
        g = p
        g[rows, y] -= 1
        g /= len(y)
        grads = []
        for i in range(len(self.weights) - 1, -1, -1):                   # backward
            grads.append((i, g.T @ inputs[i], g.sum(axis=0)))
            if i > 0:
                g = (g @ self.weights[i]) * (inputs[i] > 0)
        n = len(self.weights)
        for i, dw, db in grads:                                           # b ← m·b + g;  p ← p − lr·b
            for param, grad, v in ((self.weights[i], dw, self.velocity[i]), (self.biases[i], db, self.velocity[n + i])):
                v *= self.momentum
                v += grad
                param -= self.lr * v
        return loss
