"""Property tests: for random broadcast-compatible shapes, every input's gradient has the input's shape,
equals PyTorch's, and equals the upstream gradient summed over the axes that broadcasting stretched."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import deltagrad as dg

torch = pytest.importorskip("torch")

BINARY = {
    "add": (dg.add, torch.add),
    "mul": (dg.mul, torch.mul),
    "maximum": (dg.maximum, torch.maximum),
    "minimum": (dg.minimum, torch.minimum),
    "where": (lambda a, b, c: dg.where(c, a, b), lambda a, b, c: torch.where(c, a, b)),
}

shapes = mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4, min_side=1, max_side=3)


def sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum g over the leading axes broadcasting added and the size-1 axes it stretched (the reference)."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=25, deadline=None)
@given(shapes=shapes, seed=st.integers(0, 2**16), ties=st.booleans())
def test_broadcast_gradients(name, shapes, seed, ties):
    ours_fn, torch_fn = BINARY[name]
    (sa, sb, sc), out_shape = shapes
    rng = np.random.default_rng(seed)
    if ties:  # values from {-1, 0, 1}: many ties, where maximum/minimum split the gradient evenly
        a, b = (rng.integers(-1, 2, s).astype(np.float64) for s in (sa, sb))
    else:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    cond = rng.standard_normal(sc) > 0
    x, y = dg.tensor(a, requires_grad=True), dg.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    extra = (dg.tensor(cond),) if name == "where" else ()
    textra = (torch.tensor(cond),) if name == "where" else ()
    out, tout = ours_fn(x, y, *extra), torch_fn(tx, ty, *textra)
    assert out.shape == tuple(tout.shape)
    v = rng.standard_normal(out.shape)
    out.backward(dg.tensor(v))
    tout.backward(torch.tensor(v))
    for leaf, tleaf in ((x, tx), (y, ty)):
        assert leaf.grad.shape == leaf.shape
        np.testing.assert_allclose(leaf.grad.numpy(), tleaf.grad.numpy(), rtol=1e-12, atol=1e-12)
    if name == "add":  # d(a + b)/da is the identity: the gradient is v summed over the broadcast axes
        np.testing.assert_allclose(x.grad.numpy(), sum_to_shape(np.broadcast_to(v, out.shape), a.shape).reshape(sa))
        np.testing.assert_allclose(y.grad.numpy(), sum_to_shape(np.broadcast_to(v, out.shape), b.shape).reshape(sb))


@settings(max_examples=25, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=3),
       seed=st.integers(0, 2**16))
def test_expand_and_reductions_roundtrip(shapes, seed):
    """expand(x, out) then sum over everything: each input element gets as many ones as copies it has."""
    (sa, _), out_shape = shapes
    a = np.random.default_rng(seed).standard_normal(sa)
    x, tx = dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = x.expand(out_shape), tx.expand(out_shape)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert x.grad.shape == sa
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
