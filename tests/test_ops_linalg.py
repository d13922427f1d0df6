"""matmul and linear beyond the op table: every 1-D / batch-broadcasting case against PyTorch, operator forms,
error messages, dtypes, and gradients of gradients through a small network."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
import deltagrad.nn.functional as F

torch = pytest.importorskip("torch")


def _pair(rng, *shape, dtype=np.float64):
    a = rng.standard_normal(shape).astype(dtype)
    return dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


SHAPES = [
    ((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3,)), ((4,), (5, 4, 2)),
    ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 2)),
    ((1, 2, 3), (6, 3, 1)), ((2, 1, 1, 3), (1, 5, 3, 2)),
]


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_matmul_matches_torch(rng, sa, sb):
    a, ta = _pair(rng, *sa)
    b, tb = _pair(rng, *sb)
    y, ty = a @ b, ta @ tb
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(y.shape)
    y.backward(dg.tensor(v))
    ty.backward(torch.tensor(v))
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_operator_forms_and_aliases(rng):
    a, b = dg.tensor(rng.standard_normal((2, 3))), dg.tensor(rng.standard_normal((3, 4)))
    expected = a.data @ b.data
    for y in (a @ b, a.matmul(b), dg.matmul(a, b), a.mm(b), dg.mm(a, b), a.data @ b, a @ b.data):
        assert isinstance(y, dg.Tensor)
        np.testing.assert_allclose(y.data, expected)
    v = dg.tensor(rng.standard_normal(3))
    np.testing.assert_allclose(a.mv(v).data, a.data @ v.data)
    np.testing.assert_allclose(dg.dot(v, v).data, v.data @ v.data)
    c, d = dg.tensor(rng.standard_normal((5, 2, 3))), dg.tensor(rng.standard_normal((5, 3, 4)))
    np.testing.assert_allclose(c.bmm(d).data, c.data @ d.data)


def test_matmul_errors_name_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4, 5\)"):
        dg.zeros(2, 3) @ dg.zeros(4, 5)
    with pytest.raises(RuntimeError, match=r"\(7, 2, 3\).*\(6, 3, 4\)"):
        dg.zeros(7, 2, 3) @ dg.zeros(6, 3, 4)
    with pytest.raises(RuntimeError, match="at least 1 dimension"):
        dg.matmul(dg.tensor(2.0), dg.zeros(3))
    with pytest.raises(RuntimeError, match="2-D"):
        dg.mm(dg.zeros(2, 3, 4), dg.zeros(4, 2))
    with pytest.raises(RuntimeError, match="3-D"):
        dg.bmm(dg.zeros(2, 3, 4), dg.zeros(3, 4, 2))


@pytest.mark.parametrize("xshape", [(4, 3), (2, 5, 3), (3,), (2, 2, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(rng, xshape, bias):
    x, tx = _pair(rng, *xshape)
    w, tw = _pair(rng, 2, 3)
    b, tb = _pair(rng, 2) if bias else (None, None)
    y, ty = F.linear(x, w, b), torch.nn.functional.linear(tx, tw, tb)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    v = rng.standard_normal(y.shape)
    y.backward(dg.tensor(v))
    ty.backward(torch.tensor(v))
    for ours, theirs in [(x, tx), (w, tw)] + ([(b, tb)] if bias else []):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_linear_computes_only_needed_gradients(rng):
    x = dg.tensor(rng.standard_normal((4, 3)))
    w = dg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = dg.tensor(rng.standard_normal(2))
    F.linear(x, w, b).sum().backward()
    assert x.grad is None and b.grad is None
    np.testing.assert_allclose(w.grad.data, np.ones((4, 2)).T @ x.data)
    x.requires_grad = True
    w2 = dg.tensor(w.data)
    F.linear(x, w2).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.ones((4, 2)) @ w.data)
    assert w2.grad is None


def test_linear_non_contiguous_input(rng):
    base = rng.standard_normal((3, 4))
    x = dg.tensor(base, requires_grad=True)
    w = dg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    y = F.linear(x.T, w)   # (4, 3) transposed view
    np.testing.assert_allclose(y.data, base.T @ w.data.T)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, (np.ones((4, 2)) @ w.data).T)


def test_linear_errors_name_shapes():
    with pytest.raises(RuntimeError, match=r"\(4, 5\).*\(2, 3\)"):
        F.linear(dg.zeros(4, 5), dg.zeros(2, 3))
    with pytest.raises(RuntimeError, match=r"bias of shape \(3,\)"):
        F.linear(dg.zeros(4, 3), dg.zeros(2, 3), dg.zeros(3))


def test_float32_stays_float32(rng):
    x = dg.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    w = dg.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    b = dg.tensor(np.zeros(2, np.float32), requires_grad=True)
    y = F.linear(x, w, b) * 2.0
    assert y.dtype == np.float32
    (y @ dg.ones(2, 3)).sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_second_order_through_a_small_mlp(rng):
    """Hessian-vector product of an MLP loss, against PyTorch: linear and matmul backward are differentiable."""
    x, tx = _pair(rng, 5, 3)
    w1, tw1 = _pair(rng, 4, 3)
    b1, tb1 = _pair(rng, 4)
    w2, tw2 = _pair(rng, 3, 4)
    target = rng.integers(0, 3, 5)
    v = rng.standard_normal((4, 3))

    def hvp(lib, f, x, w1, b1, w2, tgt):
        h = lib.tanh(f.linear(x, w1, b1))
        loss = f.cross_entropy(h @ w2.T, tgt)
        (g,) = lib.autograd.grad(loss, [w1], create_graph=True)
        return (g * lib.tensor(v)).sum()

    ours = hvp(dg, F, x, w1, b1, w2, dg.tensor(target))
    theirs = hvp(torch, torch.nn.functional, tx, tw1, tb1, tw2, torch.tensor(target))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-10)
    ours.backward()
    theirs.backward()
    for a, b in [(w1, tw1), (b1, tb1), (w2, tw2), (x, tx)]:
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-9, atol=1e-12)
