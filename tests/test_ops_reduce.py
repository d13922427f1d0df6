"""Reductions beyond the op table: named-tuple results, ties, overloads, infinities, empty tensors, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.autograd import grad as dg_grad

torch = pytest.importorskip("torch")

TIES = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 0.0, 2.0], [5.0, -1.0, 5.0, 5.0]])


def pair(a):
    """The same float64 values as a deltagrad and a torch leaf tensor requiring grad."""
    a = np.asarray(a, dtype=np.float64)
    return dg.tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)


def grads_match(ours_out, theirs_out, ours_in, theirs_in, seed=0):
    v = np.random.default_rng(seed).standard_normal(ours_out.shape)
    ours_out.backward(dg.tensor(v))
    theirs_out.backward(torch.tensor(v))
    np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_along_dim_is_a_named_tuple_like_torch(name, dim, keepdim):
    x, tx = pair(TIES)
    ours = getattr(x, name)(dim, keepdim=keepdim)
    theirs = getattr(torch, name)(tx, dim, keepdim=keepdim)
    values, indices = ours
    assert ours.values is values and ours.indices is indices
    assert type(ours).__name__ == name
    np.testing.assert_array_equal(values.detach().numpy(), theirs.values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), theirs.indices.numpy())  # first index among ties
    assert indices.dtype == np.int64 and not indices.requires_grad
    grads_match(values, theirs.values, x, tx)  # the gradient goes to the returned index only


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
def test_full_reduction_shares_the_gradient_among_ties_like_torch(name):
    x, tx = pair(TIES)
    ours, theirs = getattr(dg, name)(x), getattr(torch, name)(tx)
    assert ours.shape == () and float(ours.detach()) == float(theirs.detach())
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("dim", [0, (0, 1), (-1,), 1])
def test_amax_amin_ties_along_dims_like_torch(name, dim):
    x, tx = pair(np.stack([TIES, TIES[::-1]]))
    ours = getattr(x, name)(dim, keepdim=True)
    theirs = getattr(tx, name)(dim, keepdim=True)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    grads_match(ours, theirs, x, tx)


def test_max_of_two_tensors_is_maximum():
    a, ta = pair([1.0, 5.0, 2.0])
    b, tb = pair([3.0, 5.0, 0.0])
    np.testing.assert_array_equal(dg.max(a, b).detach().numpy(), torch.max(ta, tb).detach().numpy())
    np.testing.assert_array_equal(dg.min(a, b).detach().numpy(), torch.min(ta, tb).detach().numpy())


def test_max_nan_goes_to_the_nan_positions_like_torch():
    x, tx = pair([1.0, np.nan, 2.0, np.nan])
    x.max().backward()
    tx.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    v, i = x.detach().max(0)
    assert np.isnan(v.item()) and i.item() == 1


@pytest.mark.parametrize("call", [
    lambda m, x: m.var(x), lambda m, x: m.var(x, 0), lambda m, x: m.var(x, 1, False),
    lambda m, x: m.var(x, False), lambda m, x: m.var(x, dim=(0, 1), correction=0, keepdim=True),
    lambda m, x: m.std(x), lambda m, x: m.std(x, 1, True, True), lambda m, x: m.std(x, dim=0, correction=2),
    lambda m, x: x.var(1), lambda m, x: x.std(unbiased=False),
])
def test_var_std_overloads_like_torch(call):
    x, tx = pair(np.random.default_rng(3).standard_normal((4, 5)))
    ours, theirs = call(dg, x), call(torch, tx)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    grads_match(ours, theirs, x, tx)


def test_std_of_constant_has_zero_gradient_and_var_of_one_element_is_nan():
    x, tx = pair([2.0, 2.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.std().backward()
        assert np.array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
        one = dg.tensor(np.array([3.0]), requires_grad=True)
        v = one.var()
        v.backward()
    assert np.isnan(v.item()) and np.isnan(one.grad.item())


def test_prod_with_zeros_first_and_second_derivatives_like_torch():
    a = np.array([[0.0, 2.0, -1.5, 1.2], [0.0, 0.0, 3.0, 0.5], [1.2, 0.5, 2.0, -1.0]])
    for dim in (None, 1, 0):
        x, tx = pair(a)
        ours = x.prod() if dim is None else x.prod(dim)
        theirs = tx.prod() if dim is None else tx.prod(dim)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy())
        v = np.random.default_rng(1).standard_normal(ours.shape)
        (g,) = dg_grad(ours, x, dg.tensor(v), create_graph=True)
        (tg,) = torch.autograd.grad(theirs, tx, torch.tensor(v), create_graph=True)
        np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), atol=1e-12)
        w = np.random.default_rng(2).standard_normal(a.shape)
        (h,) = dg_grad(g, x, dg.tensor(w))
        (th,) = torch.autograd.grad(tg, tx, torch.tensor(w))
        np.testing.assert_allclose(h.numpy(), th.numpy(), atol=1e-12)


def test_logsumexp_of_all_minus_inf_is_minus_inf_with_zero_gradient_and_no_warning():
    a = np.array([[-np.inf, -np.inf, -np.inf], [1.0, 2.0, -np.inf], [np.inf, 0.0, np.inf]])
    x = dg.tensor(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = dg.logsumexp(x, 1)
        y.backward(dg.tensor(np.ones(3)))
    assert y.detach().numpy()[0] == -np.inf and y.detach().numpy()[2] == np.inf
    np.testing.assert_allclose(y.detach().numpy()[1], np.log(np.exp(1.0) + np.exp(2.0)))
    g = x.grad.numpy()
    assert not np.isnan(g).any()
    np.testing.assert_array_equal(g[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(g[1], [1 / (1 + np.e), np.e / (1 + np.e), 0.0])
    np.testing.assert_array_equal(g[2], [0.5, 0.0, 0.5])  # the limit of the softmax: shared among the +inf


def test_logsumexp_is_stable_for_huge_inputs_and_matches_torch():
    a = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0]])
    for dim, keepdim in [(1, False), (0, True), ((0, 1), False)]:
        x, tx = pair(a)
        ours, theirs = x.logsumexp(dim, keepdim), torch.logsumexp(tx, dim, keepdim)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-14)
        grads_match(ours, theirs, x, tx)
    assert dg.tensor(a).logsumexp().shape == ()


def test_logsumexp_keeps_float32_and_second_derivative_matches_torch():
    x32 = dg.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    assert x32.logsumexp(1).dtype == np.float32
    x, tx = pair([[0.5, -1.0, 2.0], [-np.inf, 0.0, 1.0]])
    (g,) = dg_grad(x.logsumexp(1).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad(torch.logsumexp(tx, 1).sum(), tx, create_graph=True)
    (h,) = dg_grad((g * g).sum(), x)
    (th,) = torch.autograd.grad((tg * tg).sum(), tx)
    np.testing.assert_allclose(h.numpy(), th.numpy(), atol=1e-12)


def test_empty_tensors_like_torch():
    e, te = pair(np.zeros((0, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert e.sum().item() == 0.0
        np.testing.assert_array_equal(e.sum(0).detach().numpy(), [0.0, 0.0, 0.0])
        assert np.isnan(e.mean().item())
        assert np.isnan(e.mean(0).detach().numpy()).all()
        assert np.isnan(e.var(0).detach().numpy()).all()
        np.testing.assert_array_equal(e.prod(0).detach().numpy(), [1.0, 1.0, 1.0])
        np.testing.assert_array_equal(e.logsumexp(0).detach().numpy(), [-np.inf] * 3)
        assert e.amax(1).shape == te.amax(1).shape == (0,)
        e.mean().backward()
    assert e.grad.shape == (0, 3)


def test_reduce_errors_name_the_problem():
    x = dg.tensor(np.zeros((0, 3)))
    with pytest.raises(RuntimeError, match="numel"):
        x.max()
    with pytest.raises(IndexError, match="reduction dim 0 to have non-zero size"):
        x.max(0)
    with pytest.raises(IndexError, match="reduction dim 0"):
        x.amin(0)
    y = dg.ones(2, 3)
    with pytest.raises(IndexError, match="dim 2 is out of range for a tensor of 2 dimensions"):
        y.sum(2)
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        y.mean((0, 0))
    with pytest.raises(RuntimeError, match="appears multiple times"):
        y.sum((1, -1))
    with pytest.raises(TypeError, match="unbiased or correction"):
        y.var(0, True, correction=0)


def test_zero_dim_reductions_and_tensor_methods():
    s = dg.tensor(np.float64(2.5), requires_grad=True)
    assert s.sum(0).item() == 2.5 and s.max(0).indices.item() == 0 and s.amax(-1).item() == 2.5
    x = dg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for name in ["sum", "mean", "var", "std", "max", "min", "amax", "amin", "prod", "logsumexp"]:
        out = getattr(x, name)()
        assert out.shape == () and out.requires_grad, name
    assert dg.argmax(x, 1).tolist() == [2, 2] and dg.argmin(x).item() == 0
    assert x.sum(dim=[]).item() == 15.0  # an empty dim list reduces everything, as in PyTorch
