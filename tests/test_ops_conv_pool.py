"""Convolution and pooling against PyTorch: strides, padding, dilation, rectangular kernels, groups, ceil_mode,
overlapping windows, ties, −∞ padding, indices, float32, errors, and gradients of gradients."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
import deltagrad.nn.functional as F
from like_torch import same_as_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional
# torch notes that 'same' padding with an even kernel copies the input, which is what it should do
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _pair(rng, *shape, dtype=np.float64):
    a = rng.standard_normal(shape).astype(dtype)
    return dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


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
    same_as_torch(F.conv2d(x, w, b, **kw), TF.conv2d(tx, tw, tb, **kw), tensors, rng)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=3, padding=2), dict(padding="same"),
                                dict(groups=3, stride=2)])
def test_conv1d_matches_torch(rng, kw):
    x, tx = _pair(rng, 3, 6, 11)
    w, tw = _pair(rng, 3, 6 // kw.get("groups", 1), 4)
    b, tb = _pair(rng, 3)
    same_as_torch(F.conv1d(x, w, b, **kw), TF.conv1d(tx, tw, tb, **kw), [(x, tx), (w, tw), (b, tb)], rng)


def test_conv3d_and_unbatched_inputs(rng):
    x, tx = _pair(rng, 2, 5, 4, 6)
    w, tw = _pair(rng, 3, 2, 2, 3, 2)
    same_as_torch(dg.conv3d(x[None], w, stride=(1, 2, 1)), TF.conv3d(tx[None], tw, stride=(1, 2, 1)),
                  [(x, tx), (w, tw)], rng)
    x, tx = _pair(rng, 3, 7, 7)   # unbatched (C, H, W)
    w, tw = _pair(rng, 2, 3, 3, 3)
    same_as_torch(F.conv2d(x, w, padding=1), TF.conv2d(tx, tw, padding=1), [(x, tx), (w, tw)], rng)


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


@pytest.mark.parametrize("out_channels", [5, 6, 7, 13])
def test_conv_output_channels_off_the_blas_tile(rng, out_channels):
    """Counts of output channels that the kernels pad to a multiple of 8 rows for BLAS (LeNet's 6)."""
    x, tx = _pair(rng, 3, 2, 9, 8)
    w, tw = _pair(rng, out_channels, 2, 3, 3)
    b, tb = _pair(rng, out_channels)
    same_as_torch(F.conv2d(x, w, b), TF.conv2d(tx, tw, tb), [(x, tx), (w, tw), (b, tb)], rng)
    same_as_torch(F.conv2d(x, w, None, padding=1), TF.conv2d(tx, tw, None, padding=1), [(x, tx), (w, tw)], rng)


def _lenet_features(lib, f, x, w1, b1, w2, b2):
    h = f.max_pool2d(f.relu(f.conv2d(x, w1, b1)), 2)
    h = f.max_pool2d(f.relu(f.conv2d(h, w2, b2)), 2)
    return lib.tanh(h.reshape(h.shape[0], -1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_relu_pool_chain_matches_torch(rng, dtype):
    """LeNet's feature extractor: batch-last views flow from conv through ReLU and pooling into the next conv,
    and the gradients flow back through the same layouts (and from a flatten, which is row-major)."""
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=3e-4)
    x, tx = _pair(rng, 4, 1, 16, 16, dtype=dtype)
    w1, tw1 = _pair(rng, 6, 1, 5, 5, dtype=dtype)
    b1, tb1 = _pair(rng, 6, dtype=dtype)
    w2, tw2 = _pair(rng, 5, 6, 3, 3, dtype=dtype)
    b2, tb2 = _pair(rng, 5, dtype=dtype)
    ours = _lenet_features(dg, F, x, w1, b1, w2, b2)
    theirs = _lenet_features(torch, TF, tx, tw1, tb1, tw2, tb2)
    assert ours.dtype == dtype
    same_as_torch(ours, theirs, [(x, tx), (w1, tw1), (b1, tb1), (w2, tw2), (b2, tb2)], rng, **tol)


def test_conv_and_pool_accept_any_input_layout(rng):
    """Channels-last and transposed views give the same values and gradients as contiguous inputs."""
    a = rng.standard_normal((3, 7, 6, 4))                          # stored (N, H, W, C)
    for view in (a.transpose(0, 3, 1, 2), a.transpose(3, 0, 1, 2)[:, :3].transpose(1, 0, 2, 3)):
        x, tx = dg.tensor(view, requires_grad=True), torch.tensor(np.ascontiguousarray(view), requires_grad=True)
        w, tw = _pair(rng, 6, view.shape[1], 3, 2)
        y, ty = F.conv2d(x, w, stride=(1, 2), padding=1), TF.conv2d(tx, tw, stride=(1, 2), padding=1)
        same_as_torch(F.max_pool2d(y, 2, ceil_mode=True), TF.max_pool2d(ty, 2, ceil_mode=True), [(x, tx), (w, tw)], rng)


def test_conv_output_is_batch_last_and_pooling_keeps_layouts(rng):
    """The layout contract that keeps a conv net free of transposing copies (see ops/conv.py)."""
    x = dg.tensor(rng.standard_normal((4, 2, 10, 10)).astype(np.float32))
    w = dg.tensor(rng.standard_normal((6, 2, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w)
    assert np.argsort(y.data.strides).tolist() == [0, 3, 2, 1]   # batch innermost, channels outermost
    p = F.max_pool2d(F.relu(y), 2)
    assert np.argsort(p.data.strides).tolist() == [0, 3, 2, 1]
    a = F.avg_pool2d(y, 2)
    assert np.argsort(a.data.strides).tolist() == [0, 3, 2, 1]


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
    same_as_torch(F.max_pool2d(x, **kw), TF.max_pool2d(tx, **kw), [(x, tx)], rng)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                dict(kernel_size=2, dilation=3, ceil_mode=True)], ids=str)
def test_max_pool1d_matches_torch(rng, kw):
    x, tx = _pair(rng, 3, 2, 10)
    same_as_torch(F.max_pool1d(x, **kw), TF.max_pool1d(tx, **kw), [(x, tx)], rng)


def test_max_pool_padding_is_minus_infinity_and_ties_go_first(rng):
    a = -np.abs(rng.standard_normal((1, 2, 5, 5))) - 1.0     # all negative: zero padding would win
    x, tx = dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    same_as_torch(F.max_pool2d(x, 3, 2, 1), TF.max_pool2d(tx, 3, 2, 1), [(x, tx)], rng)
    ties = np.zeros((1, 1, 4, 4))
    ties[0, 0, 1:3, 1:3] = 5.0                                 # equal maxima in every window
    x, tx = dg.tensor(ties, requires_grad=True), torch.tensor(ties, requires_grad=True)
    same_as_torch(F.max_pool2d(x, 2, 1), TF.max_pool2d(tx, 2, 1), [(x, tx)], rng)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)], ids=str)
def test_max_pool_gradient_with_nan_and_inf_stays_at_the_argmax(rng, kw):
    """A non-finite gradient reaches only the window's arg-max, as in torch (no NaN · 0 spreading)."""
    x, tx = _pair(rng, 2, 3, 6, 6)
    y, ty = F.max_pool2d(x, **kw), TF.max_pool2d(tx, **kw)
    g = rng.standard_normal(y.shape)
    g[0, 0, 0, 0], g[1, 2, 1, 1], g[0, 1, 2, 0] = np.nan, np.inf, -np.inf
    y.backward(dg.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)   # NaN and ±inf at the same places


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
    same_as_torch(F.avg_pool2d(x, **kw), TF.avg_pool2d(tx, **kw), [(x, tx)], rng)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                          count_include_pad=False)], ids=str)
def test_avg_pool1d_matches_torch(rng, kw):
    x, tx = _pair(rng, 3, 2, 10)
    same_as_torch(F.avg_pool1d(x, **kw), TF.avg_pool1d(tx, **kw), [(x, tx)], rng)


def test_pool_errors():
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(dg.zeros(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(RuntimeError, match="too small"):
        F.avg_pool2d(dg.zeros(1, 1, 2, 2), 3)
    with pytest.raises(RuntimeError, match=r"\(1, 1, 1, 1, 6, 6\)"):
        F.max_pool2d(dg.zeros(1, 1, 1, 1, 6, 6), 2)
