"""Loss modules against PyTorch 2.13 (float64, value and input gradient to 1e-7), gradcheck, the notes'
Euclidean cost, reduction validation and weight buffers."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import nn
from deltagrad.testing import gradcheck

RTOL, ATOL = 1e-7, 1e-10


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def log_softmax(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def labels(n, c, seed=0, shape=None):
    return np.random.default_rng(seed).integers(0, c, size=shape or (n,)).astype(np.int64)


W4 = np.array([0.5, 1.0, 2.0, 0.25])

# (name, ours factory, torch factory, input, target): the input is float64 and gets the gradient
CASES = [
    ("mse", lambda: nn.MSELoss(), lambda t: t.nn.MSELoss(), randn(3, 4), randn(3, 4, seed=1)),
    ("mse_bcast_shape", lambda: nn.MSELoss(), lambda t: t.nn.MSELoss(), randn(5), randn(5, seed=1)),
    ("bce", lambda: nn.BCELoss(), lambda t: t.nn.BCELoss(), sigmoid(randn(3, 4)), sigmoid(randn(3, 4, seed=1))),
    ("bce_weight", lambda: nn.BCELoss(weight=dg.tensor(W4)), lambda t: t.nn.BCELoss(weight=t.tensor(W4)),
     sigmoid(randn(3, 4)), (randn(3, 4, seed=1) > 0).astype(np.float64)),
    ("bce_logits", lambda: nn.BCEWithLogitsLoss(), lambda t: t.nn.BCEWithLogitsLoss(), randn(3, 4) * 3,
     sigmoid(randn(3, 4, seed=1))),
    ("bce_logits_pos_weight", lambda: nn.BCEWithLogitsLoss(weight=dg.tensor(W4[::-1].copy()),
                                                           pos_weight=dg.tensor(W4)),
     lambda t: t.nn.BCEWithLogitsLoss(weight=t.tensor(W4[::-1].copy()), pos_weight=t.tensor(W4)),
     randn(3, 4) * 3, (randn(3, 4, seed=1) > 0).astype(np.float64)),
    ("ce", lambda: nn.CrossEntropyLoss(), lambda t: t.nn.CrossEntropyLoss(), randn(5, 4), labels(5, 4)),
    ("ce_weight_ignore", lambda: nn.CrossEntropyLoss(weight=dg.tensor(W4), ignore_index=2),
     lambda t: t.nn.CrossEntropyLoss(weight=t.tensor(W4), ignore_index=2), randn(6, 4), labels(6, 4, seed=3)),
    ("ce_smoothing", lambda: nn.CrossEntropyLoss(label_smoothing=0.2),
     lambda t: t.nn.CrossEntropyLoss(label_smoothing=0.2), randn(5, 4), labels(5, 4)),
    ("ce_smoothing_weight", lambda: nn.CrossEntropyLoss(weight=dg.tensor(W4), label_smoothing=0.1),
     lambda t: t.nn.CrossEntropyLoss(weight=t.tensor(W4), label_smoothing=0.1), randn(5, 4), labels(5, 4)),
    ("ce_spatial", lambda: nn.CrossEntropyLoss(), lambda t: t.nn.CrossEntropyLoss(), randn(2, 4, 3),
     labels(2, 4, shape=(2, 3))),
    ("ce_probabilities", lambda: nn.CrossEntropyLoss(), lambda t: t.nn.CrossEntropyLoss(), randn(3, 4),
     np.exp(log_softmax(randn(3, 4, seed=1)))),
    ("nll", lambda: nn.NLLLoss(), lambda t: t.nn.NLLLoss(), log_softmax(randn(5, 4)), labels(5, 4)),
    ("nll_weight_ignore", lambda: nn.NLLLoss(weight=dg.tensor(W4), ignore_index=0),
     lambda t: t.nn.NLLLoss(weight=t.tensor(W4), ignore_index=0), log_softmax(randn(6, 4)), labels(6, 4, seed=2)),
]


def set_reduction(module, reduction):
    module.reduction = reduction
    return module


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_matches_torch(case, reduction):
    torch = pytest.importorskip("torch")
    _, make_ours, make_theirs, x, y = case
    ours, theirs = set_reduction(make_ours(), reduction), set_reduction(make_theirs(torch), reduction)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    xo, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lo, lt = ours(xo, dg.tensor(y)), theirs(xt, torch.tensor(y))
    np.testing.assert_allclose(lo.data, lt.detach().numpy(), rtol=RTOL, atol=ATOL)
    v = randn(*lo.shape, seed=4)
    lo.backward(dg.tensor(v))
    lt.backward(torch.tensor(v))
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_gradcheck(case):
    _, make_ours, _, x, y = case
    loss = make_ours()
    target = dg.tensor(y)
    assert gradcheck(lambda inp: loss(inp, target), [dg.tensor(x, requires_grad=True)])


def test_euclidean_loss_is_half_squared_norm_with_gradient_x_minus_y():
    x, y = randn(4, 3), randn(4, 3, seed=1)
    xo = dg.tensor(x, requires_grad=True)
    loss = nn.EuclideanLoss()(xo, dg.tensor(y))
    np.testing.assert_allclose(loss.item(), 0.5 * np.sum((x - y) ** 2), rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(xo.grad.data, x - y, rtol=1e-12)  # the notes' starting backward signal
    per_sample = 0.5 * np.sum((x - y) ** 2, axis=1)  # ½‖x_n − y_n‖² for each of the 4 samples
    np.testing.assert_allclose(nn.EuclideanLoss(reduction="none")(dg.tensor(x), dg.tensor(y)).data,
                               per_sample, rtol=1e-12)
    np.testing.assert_allclose(nn.EuclideanLoss(reduction="mean")(dg.tensor(x), dg.tensor(y)).item(),
                               per_sample.mean(), rtol=1e-12)
    assert gradcheck(lambda a: nn.EuclideanLoss()(a, dg.tensor(y)), [dg.tensor(x, requires_grad=True)])
    # = ½ · MSE · n
    mse = nn.MSELoss(reduction="sum")(dg.tensor(x), dg.tensor(y)).item()
    np.testing.assert_allclose(loss.item(), mse / 2, rtol=1e-12)


def test_cross_entropy_equals_log_softmax_then_nll():
    x, y = randn(6, 5), labels(6, 5)
    ce = nn.CrossEntropyLoss()(dg.tensor(x), dg.tensor(y))
    nll = nn.NLLLoss()(nn.LogSoftmax(dim=1)(dg.tensor(x)), dg.tensor(y))
    np.testing.assert_allclose(ce.item(), nll.item(), rtol=1e-12)


def test_float32_stays_float32():
    x = dg.randn(4, 3)
    for loss, target in ((nn.MSELoss(), dg.randn(4, 3)), (nn.EuclideanLoss(), dg.randn(4, 3)),
                         (nn.CrossEntropyLoss(), dg.tensor([0, 1, 2, 1])),
                         (nn.BCEWithLogitsLoss(), dg.rand(4, 3)), (nn.BCELoss(), dg.rand(4, 3))):
        inp = x.sigmoid() if isinstance(loss, nn.BCELoss) else x
        assert loss(inp, target).dtype == np.float32, type(loss).__name__


@pytest.mark.parametrize("cls", [nn.MSELoss, nn.EuclideanLoss, nn.BCELoss, nn.BCEWithLogitsLoss,
                                 nn.CrossEntropyLoss, nn.NLLLoss])
def test_reduction_validated(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        cls(reduction="avg")
    assert cls(reduction="none").reduction == "none"


def test_weight_buffers_and_arguments():
    ce = nn.CrossEntropyLoss(weight=W4)  # arrays become buffers
    assert isinstance(ce.weight, dg.Tensor) and list(ce.state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=dg.ones(3)).state_dict()) == ["pos_weight"]
    assert list(nn.NLLLoss().state_dict()) == []
    ce.double()
    assert ce.weight.dtype == np.float64
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\]"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(TypeError, match="weight must be a Tensor or array"):
        nn.NLLLoss(weight="heavy")
    # a loss is a Module: it sits in a model's children and has no parameters
    assert list(nn.MSELoss().parameters()) == []
