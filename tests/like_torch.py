"""Checks shared by the op tests: a deltagrad result and its PyTorch counterpart give the same forward
values and, for one random upstream gradient, the same input gradients (float64)."""

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


def same_as_torch(ours, theirs, pairs, rng, rtol=1e-10, atol=1e-12):
    """Forward values, then the gradients of every (ours, theirs) input pair for one random cotangent."""
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=atol)
    v = rng.standard_normal(ours.shape).astype(ours.dtype)
    ours.backward(dg.tensor(v))
    theirs.backward(torch.tensor(v))
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=rtol, atol=atol)
