"""Convolution and pooling against PyTorch: strides, padding, dilation, rectangular kernels, groups, ceil_mode,
overlapping windows, ties, −∞ padding, indices, float32, errors, and gradients of gradients."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
import deltagrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
# torch notes that 'same' padding with an even kernel copies the input, which is what it should do
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _pair(rng, *shape, dtype=np.float64):
    a = rng.standard_normal(shape).astype(dtype)
    return dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _check(ours, theirs, tensors, rng, rtol=1e-10, atol=1e-12):
    """Forward values, then the gradients of every (ours, theirs) input pair for one random cotangent."""
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=atol)
    v = rng.standard_normal(ours.shape).astype(ours.dtype)
    ours.backward(dg.tensor(v))
    theirs.backward(torch.tensor(v))
    for a, b in tensors:
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=rtol, atol=atol)


CONV2D = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 3), padding=(1, 2)),
    dict(padding=2, dilation=2),
    dict(stride=(1, 2), padding=(0, 1), dilation=(3, 1)),
    dict(padding="same"),
    dict(padding="same", dilation=(1, 2)),
    dict(padding="valid", stride=3),
    dict(groups=2, padding=1),
    dict(groups=4, stride=2),
]


@pytest.mark.parametrize("kw", CONV2D, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(rng, kw, kernel, bias):
    groups = kw.get("groups", 1)
    x, tx = _pair(rng, 2, 4, 9, 8)
    w, tw = _pair(rng, 4, 4 // groups, *kernel)
    b, tb = _pair(rng, 4) if bias else (None, None)
    tensors = [(x, tx), (w, tw)] + ([(b, tb)] if bias else [])
    _check(F.conv2d(x, w, b, **kw), TF.conv2d(tx, tw, tb, **kw), tensors, rng)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=3, padding=2), dict(padding="same"),
                                dict(groups=3, stride=2)])
def test_conv1d_matches_torch(rng, kw):
    x, tx = _pair(rng, 3, 6, 11)
    w, tw = _pair(rng, 3, 6 // kw.get("groups", 1), 4)
    b, tb = _pair(rng, 3)
    _check(F.conv1d(x, w, b, **kw), TF.conv1d(tx, tw, tb, **kw), [(x, tx), (w, tw), (b, tb)], rng)


def test_conv3d_and_unbatched_inputs(rng):
    x, tx = _pair(rng, 2, 5, 4, 6)
    w, tw = _pair(rng, 3, 2, 2, 3, 2)
    _check(dg.conv3d(x[None], w, stride=(1, 2, 1)), TF.conv3d(tx[None], tw, stride=(1, 2, 1)), [(x, tx), (w, tw)],
           rng)
    x, tx = _pair(rng, 3, 7, 7)   # unbatched (C, H, W)
    w, tw = _pair(rng, 2, 3, 3, 3)
    _check(F.conv2d(x, w, padding=1), TF.conv2d(tx, tw, padding=1), [(x, tx), (w, tw)], rng)


def test_conv_float32_stays_float32(rng):
    x = dg.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    w = dg.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = dg.tensor(np.zeros(4, np.float32), requires_grad=True)
    y = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
    y = F.avg_pool2d(y, 2)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_conv_errors_name_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3, 8, 8\).*\(4, 2, 3, 3\)"):
        F.conv2d(dg.zeros(2, 3, 8, 8), dg.zeros(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match="smaller than the kernel"):
        F.conv2d(dg.zeros(1, 1, 2, 2), dg.zeros(1, 1, 3, 3))
    with pytest.raises(RuntimeError, match=r"bias of shape \(3,\)"):
        F.conv2d(dg.zeros(1, 1, 4, 4), dg.zeros(2, 1, 3, 3), dg.zeros(3))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(dg.zeros(1, 1, 4, 4), dg.zeros(2, 1, 3, 3), padding="same", stride=2)
    with pytest.raises(ValueError, match="stride"):
        F.conv1d(dg.zeros(1, 1, 4), dg.zeros(2, 1, 3), stride=(1, 2))


def test_conv_gradient_of_gradient_matches_torch(rng):
    """‖∂L/∂x‖² differentiated again (a gradient penalty): conv_input / conv_weight backward rules."""
    x, tx = _pair(rng, 2, 2, 6, 5)
    w, tw = _pair(rng, 3, 2, 3, 2)
    b, tb = _pair(rng, 3)

    def penalty(lib, f, x, w, b):
        y = f.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2))
        loss = (lib.tanh(y) ** 2).sum()
        gx, gw = lib.autograd.grad(loss, [x, w], create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()

    ours, theirs = penalty(dg, F, x, w, b), penalty(torch, TF, tx, tw, tb)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-10)
    ours.backward()
    theirs.backward()
    for a, c in [(x, tx), (w, tw), (b, tb)]:
        np.testing.assert_allclose(a.grad.data, c.grad.numpy(), rtol=1e-9, atol=1e-12)


# ---- pooling ---------------------------------------------------------------------------------------------------

MAX2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),                                   # overlapping windows accumulate
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)),
    dict(kernel_size=3, stride=2, padding=1, dilation=2),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("kw", MAX2D, ids=str)
def test_max_pool2d_matches_torch(rng, kw):
    x, tx = _pair(rng, 2, 3, 9, 8)
    _check(F.max_pool2d(x, **kw), TF.max_pool2d(tx, **kw), [(x, tx)], rng)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                dict(kernel_size=2, dilation=3, ceil_mode=True)], ids=str)
def test_max_pool1d_matches_torch(rng, kw):
    x, tx = _pair(rng, 3, 2, 10)
    _check(F.max_pool1d(x, **kw), TF.max_pool1d(tx, **kw), [(x, tx)], rng)


def test_max_pool_padding_is_minus_infinity_and_ties_go_first(rng):
    a = -np.abs(rng.standard_normal((1, 2, 5, 5))) - 1.0     # all negative: zero padding would win
    x, tx = dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    _check(F.max_pool2d(x, 3, 2, 1), TF.max_pool2d(tx, 3, 2, 1), [(x, tx)], rng)
    ties = np.zeros((1, 1, 4, 4))
    ties[0, 0, 1:3, 1:3] = 5.0                                 # equal maxima in every window
    x, tx = dg.tensor(ties, requires_grad=True), torch.tensor(ties, requires_grad=True)
    _check(F.max_pool2d(x, 2, 1), TF.max_pool2d(tx, 2, 1), [(x, tx)], rng)


def test_max_pool_return_indices_match_torch(rng):
    a = rng.standard_normal((2, 3, 7, 6))
    for kw in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), dilation=2)]:
        y, idx = F.max_pool2d(dg.tensor(a, requires_grad=True), return_indices=True, **kw)
        ty, tidx = TF.max_pool2d(torch.tensor(a), return_indices=True, **kw)
        np.testing.assert_array_equal(idx.data, tidx.numpy())
        assert idx.dtype == np.int64 and not idx.requires_grad
    y, idx = F.max_pool1d(dg.tensor(a[0]), 3, 2, return_indices=True)
    np.testing.assert_array_equal(idx.data, TF.max_pool1d(torch.tensor(a[0]), 3, 2, return_indices=True)[1].numpy())


def test_max_pool_gradient_of_gradient_matches_torch(rng):
    x, tx = _pair(rng, 2, 2, 7, 6)

    def twice(lib, f, x):
        y = f.max_pool2d(x * x, 3, 2, 1)
        (g,) = lib.autograd.grad((y ** 3).sum(), [x], create_graph=True)
        return (g * g).sum()

    ours, theirs = twice(dg, F, x), twice(torch, TF, tx)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-10)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-9, atol=1e-12)


AVG2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, stride=1, divisor_override=3),
]


@pytest.mark.parametrize("kw", AVG2D, ids=str)
def test_avg_pool2d_matches_torch(rng, kw):
    x, tx = _pair(rng, 2, 3, 9, 8)
    _check(F.avg_pool2d(x, **kw), TF.avg_pool2d(tx, **kw), [(x, tx)], rng)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                          count_include_pad=False)], ids=str)
def test_avg_pool1d_matches_torch(rng, kw):
    x, tx = _pair(rng, 3, 2, 10)
    _check(F.avg_pool1d(x, **kw), TF.avg_pool1d(tx, **kw), [(x, tx)], rng)


def test_pool_errors():
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(dg.zeros(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(RuntimeError, match="too small"):
        F.avg_pool2d(dg.zeros(1, 1, 2, 2), 3)
    with pytest.raises(RuntimeError, match=r"\(1, 1, 1, 1, 6, 6\)"):
        F.max_pool2d(dg.zeros(1, 1, 1, 1, 6, 6), 2)
