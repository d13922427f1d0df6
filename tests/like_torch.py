"""The check shared by the shape and indexing tests: a deltagrad function and its PyTorch counterpart give
the same forward values and, for one random upstream gradient, the same input gradient (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((4, 5, 3))


def pair(a=X):
    a = np.asarray(a, dtype=np.float64)
    return dg.tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)


def check_like_torch(f_dg, f_torch, a=X, seed=0):
    x, tx = pair(a)
    ours, theirs = f_dg(x), f_torch(tx)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    v = np.random.default_rng(seed).standard_normal(ours.shape)
    ours.backward(dg.tensor(v))
    theirs.backward(torch.tensor(v))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
