"""deltagrad.nn.functional: batch norm and its running statistics against PyTorch, dropout's statistics and
evaluation mode, and the torch-compatible signatures the layers call."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
import deltagrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


# ---- batch norm ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_batch_norm_training_matches_torch(rng, shape):
    a = rng.standard_normal(shape) * 2 + 1
    x, tx = dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    w0, b0 = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    w, tw = dg.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    b, tb = dg.tensor(b0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    rm0, rv0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm, rv = dg.tensor(rm0), dg.tensor(rv0)
    trm, trv = torch.tensor(rm0), torch.tensor(rv0)
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-4)
    ty = TF.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.3, eps=1e-4)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm.data, trm.numpy(), rtol=1e-12)        # updated in place, unbiased variance
    np.testing.assert_allclose(rv.data, trv.numpy(), rtol=1e-12)
    assert not rm.requires_grad and rm.grad is None
    v = rng.standard_normal(shape)
    y.backward(dg.tensor(v))
    ty.backward(torch.tensor(v))
    for ours, theirs in [(x, tx), (w, tw), (b, tb)]:
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_batch_norm_eval_uses_running_stats(rng):
    a = rng.standard_normal((4, 3, 2))
    rm0, rv0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    x, tx = dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    w, tw = dg.tensor(np.full(3, 2.0), requires_grad=True), torch.tensor(np.full(3, 2.0), requires_grad=True)
    rm, rv = dg.tensor(rm0), dg.tensor(rv0)
    y = F.batch_norm(x, rm, rv, w, None, training=False)
    ty = TF.batch_norm(tx, torch.tensor(rm0), torch.tensor(rv0), tw, None, training=False)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(rm.data, rm0)                          # untouched
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-12)


def test_batch_norm_second_derivative_matches_torch(rng):
    a = rng.standard_normal((5, 2, 3))
    x, tx = dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)

    def twice(lib, f, x):
        y = f.batch_norm(x, None, None, training=True)
        (g,) = lib.autograd.grad((y ** 3).sum(), [x], create_graph=True)
        return (g * g).sum()

    ours, theirs = twice(dg, F, x), twice(torch, TF, tx)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-9)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_batch_norm_float32_and_errors(rng):
    x = dg.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    rm, rv = dg.zeros(3), dg.ones(3)
    y = F.batch_norm(x, rm, rv, dg.ones(3), dg.zeros(3), training=True)
    assert y.dtype == rm.dtype == rv.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(dg.zeros(1, 3), None, None, training=True)
    with pytest.raises(RuntimeError, match=r"weight of shape \(4,\).*\(2, 3\)"):
        F.batch_norm(dg.zeros(2, 3), None, None, dg.ones(4), training=True)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(dg.zeros(2, 3), None, None, training=False)


def test_batch_norm_running_stats_update_in_a_captured_step(rng):
    rm, rv = dg.zeros(3, dtype=dg.float64), dg.ones(3, dtype=dg.float64)
    step = dg.capture(lambda x: F.batch_norm(x, rm, rv, training=True, momentum=0.5).sum())
    batches = [rng.standard_normal((4, 3)) * (k + 1) for k in range(3)]
    expected_m, expected_v = np.zeros(3), np.ones(3)
    for b in batches:                                  # captured on the first call, replayed after
        step(dg.tensor(b))
        expected_m = 0.5 * expected_m + 0.5 * b.mean(0)
        expected_v = 0.5 * expected_v + 0.5 * b.var(0, ddof=1)
    np.testing.assert_allclose(rm.data, expected_m, rtol=1e-12)
    np.testing.assert_allclose(rv.data, expected_v, rtol=1e-12)


# ---- dropout ------------------------------------------------------------------------------------------------------


def test_dropout_statistics_and_gradient():
    dg.manual_seed(0)
    x = dg.ones(200, 500, requires_grad=True)
    y = F.dropout(x, p=0.3)
    kept = y.data != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01                              # fraction dropped ≈ p
    np.testing.assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-6)           # survivors scaled by 1/(1 − p)
    assert abs(y.data.mean() - 1.0) < 0.01                                 # expectation preserved
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)                     # same mask in backward
    assert y.dtype == np.float32


def test_dropout_is_repeatable_and_fresh():
    dg.manual_seed(5)
    a = F.dropout(dg.ones(50)).data
    b = F.dropout(dg.ones(50)).data
    dg.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(dg.ones(50)).data, a)
    assert (a != b).any()


def test_dropout_eval_and_edge_probabilities():
    x = dg.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, 0)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            F.dropout(x, p)


def test_dropout_draws_new_masks_in_a_captured_step():
    dg.manual_seed(1)
    step = dg.capture(lambda x: F.dropout(x, 0.5) * 1.0)
    x = dg.ones(1000)
    masks = [step(x).data.copy() for _ in range(3)]   # capture, then two replays
    assert (masks[0] != masks[1]).any() and (masks[1] != masks[2]).any()


# ---- the rest of the torch-shaped surface -------------------------------------------------------------------------


def test_activations_and_softmax_signatures(rng):
    a = rng.standard_normal((3, 4))
    x, tx = dg.tensor(a), torch.tensor(a)
    np.testing.assert_allclose(F.relu(x, inplace=True).data, TF.relu(tx).numpy())
    np.testing.assert_allclose(F.leaky_relu(x, 0.2).data, TF.leaky_relu(tx, 0.2).numpy())
    np.testing.assert_allclose(F.tanh(x).data, torch.tanh(tx).numpy())
    np.testing.assert_allclose(F.sigmoid(x).data, torch.sigmoid(tx).numpy())
    np.testing.assert_allclose(F.softmax(x, dim=0).data, TF.softmax(tx, dim=0).numpy())
    np.testing.assert_allclose(F.log_softmax(x, -1).data, TF.log_softmax(tx, -1).numpy())
    assert F.softmax(dg.tensor(a), 1, dtype=dg.float32).dtype == np.float32
    with pytest.warns(UserWarning, match="implicit dimension"):
        np.testing.assert_allclose(F.softmax(x).data, TF.softmax(tx, 1).numpy())


def test_legacy_reduction_flags(rng):
    x, y = dg.tensor(rng.standard_normal(4)), dg.tensor(rng.standard_normal(4))
    with pytest.warns(UserWarning):
        total = F.mse_loss(x, y, size_average=False)
    np.testing.assert_allclose(total.item(), F.mse_loss(x, y, reduction="sum").item())
    with pytest.warns(UserWarning):
        assert F.mse_loss(x, y, reduce=False).shape == (4,)


def test_pad_flatten_one_hot(rng):
    x = dg.tensor(rng.standard_normal((2, 3, 4)))
    np.testing.assert_allclose(F.pad(x, (1, 2), value=5.0).data, np.pad(x.data, ((0, 0), (0, 0), (1, 2)),
                                                                          constant_values=5.0))
    assert F.flatten(x, 1).shape == (2, 12) and F.flatten(x).shape == (24,)
    oh = F.one_hot(dg.tensor([2, 0, 1]), 4)
    np.testing.assert_array_equal(oh.data, TF.one_hot(torch.tensor([2, 0, 1]), 4).numpy())
    assert oh.dtype == np.int64 and F.one_hot(dg.tensor([[1], [3]])).shape == (2, 1, 4)
    with pytest.raises(RuntimeError, match="class values"):
        F.one_hot(dg.tensor([0, 5]), 3)


def test_lenet_forward_and_backward_match_torch(rng):
    """A LeNet-style stack, every layer through F, against the same stack in torch."""
    params = {k: rng.standard_normal(s) * 0.3 for k, s in dict(c1=(4, 1, 5, 5), b1=(4,), c2=(6, 4, 3, 3), b2=(6,),
                                                               f=(3, 6 * 2 * 2), g=(3,)).items()}
    xb, yb = rng.standard_normal((5, 1, 16, 16)), rng.integers(0, 3, 5)

    def run(lib, f, p, x, y):
        h = f.max_pool2d(f.relu(f.conv2d(x, p["c1"], p["b1"])), 2)
        h = f.avg_pool2d(f.relu(f.conv2d(h, p["c2"], p["b2"], padding=1)), 3)
        h = f.dropout(h, 0.5, training=False)
        return f.cross_entropy(f.linear(h.reshape(5, -1), p["f"], p["g"]), y)

    ours_p = {k: dg.tensor(v, requires_grad=True) for k, v in params.items()}
    theirs_p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    ours = run(dg, F, ours_p, dg.tensor(xb), dg.tensor(yb))
    theirs = run(torch, TF, theirs_p, torch.tensor(xb), torch.tensor(yb))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-10)
    ours.backward()
    theirs.backward()
    for k in params:
        np.testing.assert_allclose(ours_p[k].grad.data, theirs_p[k].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=k)
