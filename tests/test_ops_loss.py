"""Losses and softmax against PyTorch beyond the op table: every reduction, class weights, ignore_index, label
smoothing, probability targets, spatial dimensions, huge and infinite logits, BCE clamping, errors, dtypes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import deltagrad as dg
import deltagrad.nn.functional as F
from like_torch import same_as_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _t(a, grad=False):
    return dg.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


CE_CASES = list(itertools.product(["mean", "sum", "none"], [False, True], [None, 1], [0.0, 0.25]))


@pytest.mark.parametrize("reduction,weighted,ignore,smoothing", CE_CASES)
@pytest.mark.parametrize("spatial", [(), (3,)])
def test_cross_entropy_class_targets(rng, reduction, weighted, ignore, smoothing, spatial):
    x, tx = _t(rng.standard_normal((5, 4) + spatial) * 3, grad=True)
    y = rng.integers(0, 4, (5,) + spatial)
    if ignore is not None:
        y.reshape(-1)[::3] = ignore     # some targets ignored
    w = rng.uniform(0.5, 2.0, 4) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing, ignore_index=-100 if ignore is None else ignore)
    ours = F.cross_entropy(x, dg.tensor(y), None if w is None else dg.tensor(w), **kw)
    theirs = TF.cross_entropy(tx, torch.tensor(y), None if w is None else torch.tensor(w), **kw)
    same_as_torch(ours, theirs, [(x, tx)], rng)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probability_targets(rng, reduction, smoothing):
    x, tx = _t(rng.standard_normal((4, 3, 2)), grad=True)
    p, tp = _t(rng.dirichlet(np.ones(3), (4, 2)).transpose(0, 2, 1).copy(), grad=True)
    w = rng.uniform(0.5, 2.0, 3)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    ours = F.cross_entropy(x, p, dg.tensor(w), **kw)
    theirs = TF.cross_entropy(tx, tp, torch.tensor(w), **kw)
    same_as_torch(ours, theirs, [(x, tx), (p, tp)], rng)


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(rng):
    logits = rng.standard_normal((6, 5))
    y = rng.integers(0, 5, 6)
    x = dg.tensor(logits, requires_grad=True)
    F.cross_entropy(x, dg.tensor(y)).backward()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(x.grad.data, (p - np.eye(5)[y]) / 6, rtol=1e-12)


def test_cross_entropy_unbatched_and_all_ignored(rng):
    x, tx = _t(rng.standard_normal(4), grad=True)
    for reduction in ["mean", "none"]:
        x.grad = tx.grad = None
        same_as_torch(F.cross_entropy(x, dg.tensor(np.array(2)), reduction=reduction),
                      TF.cross_entropy(tx, torch.tensor(2), reduction=reduction), [(x, tx)], rng)
    ours = F.cross_entropy(dg.tensor(rng.standard_normal((2, 3))), dg.tensor(np.array([-100, -100])))
    assert np.isnan(ours.item())  # 0 / 0, as torch


@pytest.mark.parametrize("big", [1000.0, 1e30, np.inf])
def test_huge_logits_stay_finite(big):
    logits = np.array([[big, 0.0, -big], [-big, big, 0.0]])
    y = np.array([0, 2])
    x = dg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, dg.tensor(y), reduction="sum")
    expected = TF.cross_entropy(torch.tensor(logits), torch.tensor(y), reduction="sum").item()
    assert np.isfinite(loss.item()) == np.isfinite(expected)
    if np.isfinite(expected):
        np.testing.assert_allclose(loss.item(), expected)
        loss.backward()
        assert np.isfinite(x.grad.data).all()
    for fn, tfn in [(dg.softmax, torch.softmax), (dg.log_softmax, torch.log_softmax)]:
        ours, theirs = fn(dg.tensor(logits), 1).data, tfn(torch.tensor(logits), 1).numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs)


def test_softmax_with_minus_infinity_matches_torch(rng):
    a = rng.standard_normal((3, 4))
    a[0, 1] = a[1, :2] = -np.inf            # masked positions, as in attention
    x, tx = _t(a, grad=True)
    same_as_torch(dg.softmax(x, 1), torch.softmax(tx, 1), [(x, tx)], rng)
    x, tx = _t(a, grad=True)
    ours, theirs = x.log_softmax(1), torch.log_softmax(tx, 1)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy())
    ours.backward(dg.ones(3, 4, dtype=dg.float64))
    theirs.backward(torch.ones(3, 4, dtype=torch.float64))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch(rng, reduction):
    x, tx = _t(rng.standard_normal((6, 4, 2)), grad=True)
    y = rng.integers(0, 4, (6, 2))
    y[1, 0] = 3
    y[2, 1] = -1
    w = rng.uniform(0.5, 2, 4)
    kw = dict(reduction=reduction, ignore_index=-1)
    same_as_torch(F.nll_loss(x, dg.tensor(y), dg.tensor(w), **kw),
                  TF.nll_loss(tx, torch.tensor(y), torch.tensor(w), **kw), [(x, tx)], rng)


def test_log_softmax_then_nll_equals_cross_entropy(rng):
    logits = rng.standard_normal((5, 3))
    y = dg.tensor(rng.integers(0, 3, 5))
    a = F.nll_loss(F.log_softmax(dg.tensor(logits), 1), y)
    b = F.cross_entropy(dg.tensor(logits), y)
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_matches_torch_including_targets_and_weights(rng, reduction):
    x, tx = _t(rng.uniform(0.01, 0.99, (4, 3)), grad=True)
    y, ty = _t(rng.uniform(0, 1, (4, 3)), grad=True)
    w = rng.uniform(0.5, 2, 3)
    same_as_torch(F.binary_cross_entropy(x, y, dg.tensor(w), reduction=reduction),
                  TF.binary_cross_entropy(tx, ty, torch.tensor(w), reduction=reduction), [(x, tx), (y, ty)], rng)


def test_bce_clamps_the_log_at_minus_100():
    a = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    x, tx = _t(a, grad=True)
    ours = F.binary_cross_entropy(x, dg.tensor(t), reduction="none")
    theirs = TF.binary_cross_entropy(tx, torch.tensor(t), reduction="none")
    np.testing.assert_allclose(ours.data, theirs.detach().numpy())   # 0, 0, 100, 100, log 2
    np.testing.assert_allclose(ours.data[2:4], [100.0, 100.0])
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy())         # finite: divided by max(x(1−x), 1e-12)
    assert np.isfinite(x.grad.data).all()
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(dg.tensor([1.5]), dg.tensor([1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_matches_torch(rng, reduction, pos_weight):
    x, tx = _t(rng.standard_normal((5, 3)) * 4, grad=True)
    y, ty = _t(rng.uniform(0, 1, (5, 3)), grad=not pos_weight)   # torch has no target gradient with pos_weight
    w = rng.uniform(0.5, 2, (5, 1))
    pw = rng.uniform(0.5, 3, 3) if pos_weight else None
    kw = dict(reduction=reduction)
    ours = F.binary_cross_entropy_with_logits(x, y, dg.tensor(w), pos_weight=None if pw is None else dg.tensor(pw),
                                              **kw)
    theirs = TF.binary_cross_entropy_with_logits(tx, ty, torch.tensor(w),
                                                 pos_weight=None if pw is None else torch.tensor(pw), **kw)
    same_as_torch(ours, theirs, [(x, tx)] + ([] if pos_weight else [(y, ty)]), rng)


def test_bce_with_logits_is_finite_for_huge_logits():
    logits = np.array([1000.0, -1000.0, 1000.0, -1000.0, 40.0])
    target = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    x, tx = _t(logits, grad=True)
    pw = np.array(2.0)
    ours = F.binary_cross_entropy_with_logits(x, dg.tensor(target), reduction="none", pos_weight=dg.tensor(pw))
    theirs = TF.binary_cross_entropy_with_logits(tx, torch.tensor(target), reduction="none",
                                                 pos_weight=torch.tensor(pw))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy())   # 0, 0, 1000, 2000, 40
    ours.sum().backward()
    theirs.sum().backward()
    assert np.isfinite(x.grad.data).all()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch_with_target_gradient(rng, reduction):
    x, tx = _t(rng.standard_normal((3, 4)), grad=True)
    y, ty = _t(rng.standard_normal((3, 4)), grad=True)
    same_as_torch(F.mse_loss(x, y, reduction=reduction), TF.mse_loss(tx, ty, reduction=reduction),
                  [(x, tx), (y, ty)], rng)


def test_euclidean_loss_is_half_the_squared_norm(rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    per_sample = 0.5 * ((a - b) ** 2).sum(1)
    x = dg.tensor(a, requires_grad=True)
    loss = F.euclidean_loss(x, dg.tensor(b))
    np.testing.assert_allclose(loss.item(), per_sample.sum())
    loss.backward()
    np.testing.assert_allclose(x.grad.data, a - b)                    # dL/dx = x − y, the notes' δ
    np.testing.assert_allclose(F.euclidean_loss(dg.tensor(a), dg.tensor(b), "mean").item(), per_sample.mean())
    np.testing.assert_allclose(F.euclidean_loss(dg.tensor(a), dg.tensor(b), "none").data, per_sample)
    # the notes' worked example: x = (1.0, 0.1) against y = (0.5, 0.5)
    np.testing.assert_allclose(F.euclidean_loss(dg.tensor([1.0, 0.1]), dg.tensor([0.5, 0.5])).item(), 0.205, rtol=1e-6)
    assert F.euclidean_loss(dg.tensor([1.0, 0.1]), dg.tensor([0.5, 0.5]), "none").shape == ()


@pytest.mark.parametrize("fn,target", [
    (F.mse_loss, np.zeros((4, 3), np.float32)),
    (F.euclidean_loss, np.zeros((4, 3), np.float32)),
    (F.binary_cross_entropy_with_logits, np.ones((4, 3), np.float32)),
    (F.cross_entropy, np.array([0, 1, 2, 1])),
    (F.nll_loss, np.array([0, 1, 2, 1])),
])
def test_losses_keep_float32(rng, fn, target):
    x = dg.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    for reduction in ["mean", "sum", "none"]:
        x.grad = None
        loss = fn(x, dg.tensor(target), reduction=reduction)
        assert loss.dtype == np.float32, (fn.__name__, reduction)
        loss.sum().backward()
        assert x.grad.dtype == np.float32


def test_loss_errors_name_the_problem():
    x, y = dg.zeros(4, 3), dg.zeros(4, 1)
    for fn in [F.mse_loss, F.euclidean_loss, F.binary_cross_entropy_with_logits]:
        with pytest.raises(ValueError, match=r"\(4, 1\).*\(4, 3\)"):
            fn(x, y)
        with pytest.raises(ValueError, match="reduction"):
            fn(x, x, reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, dg.tensor([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(ValueError, match=r"target of shape \(3,\).*\(4, 3\)"):
        F.cross_entropy(x, dg.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match="target 3 is out of bounds"):
        F.cross_entropy(x, dg.tensor([0, 1, 3, 0]))
    with pytest.raises(IndexError, match="out of bounds"):
        F.nll_loss(x, dg.tensor([0, -1, 2, 0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, dg.tensor([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight of shape \(2,\)"):
        F.cross_entropy(x, dg.tensor([0, 1, 2, 0]), weight=dg.ones(2))


@pytest.mark.parametrize("n,c", [(5, 4), (32, 10), (20, 200)])   # both row-maximum forms of the class-index path
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.uint8, np.uint64])
def test_cross_entropy_fast_path_layouts_and_target_dtypes(rng, n, c, order, tdtype):
    logits = np.asarray(rng.standard_normal((n, c)) * 3, order=order)
    logits[0, 0] = 1e30                                              # a huge logit stays exact
    y = rng.integers(0, c, n).astype(tdtype)
    for reduction in ["mean", "sum", "none"]:
        x, tx = _t(logits, grad=True)
        x.data = np.asarray(x.data, order=order)
        ours = F.cross_entropy(x, dg.tensor(y), reduction=reduction)
        theirs = TF.cross_entropy(tx, torch.tensor(y.astype(np.int64)), reduction=reduction)
        same_as_torch(ours, theirs, [(x, tx)], rng)
