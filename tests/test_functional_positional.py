"""deltagrad.nn.functional called with its parameters by position and by keyword: the same values and gradients
as each other and as torch.nn.functional called the same way (float64)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import deltagrad as dg
import deltagrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

R = np.random.default_rng(3)
X = R.standard_normal((4, 3))
IMG = R.standard_normal((2, 2, 5, 5))
KERNEL = R.standard_normal((3, 2, 3, 3))
BIAS = R.standard_normal(3)
W = R.standard_normal((5, 3))
B5 = R.standard_normal(5)
PROBS = R.uniform(0.05, 0.95, (4, 3))
TARGET = R.uniform(0, 1, (4, 3))
LABELS = np.array([0, 2, 1, 2])
CLASS_WEIGHT = R.uniform(0.5, 2, 3)

# name -> (function name, arrays (tensors, requiring grad where float),
#          parameters by position, the same parameters by keyword)
CASES = {
    "leaky_relu": ("leaky_relu", (X,), (0.2,), dict(negative_slope=0.2)),
    "softmax": ("softmax", (X,), (0,), dict(dim=0)),
    "log_softmax": ("log_softmax", (X,), (1,), dict(dim=1)),
    "pad": ("pad", (X,), ((1, 2), "constant", 0.5), dict(pad=(1, 2), mode="constant", value=0.5)),
    "flatten": ("flatten", (IMG,), (1, 2), dict(start_dim=1, end_dim=2)),
    "linear": ("linear", (X, W), (B5,), dict(bias=B5)),
    "conv2d": ("conv2d", (IMG, KERNEL), (BIAS, 2, 1), dict(bias=BIAS, stride=2, padding=1)),
    "max_pool2d": ("max_pool2d", (IMG,), (3, 1, 1), dict(kernel_size=3, stride=1, padding=1)),
    "avg_pool2d": ("avg_pool2d", (IMG,), (2, 1, 1, False, False),
                   dict(kernel_size=2, stride=1, padding=1, ceil_mode=False, count_include_pad=False)),
    "dropout": ("dropout", (X,), (0.0, True), dict(p=0.0, training=True)),
    "mse_loss": ("mse_loss", (X, TARGET), (None, None, "sum"), dict(reduction="sum")),
    "cross_entropy": ("cross_entropy", (X, LABELS), (CLASS_WEIGHT, None, 1, None, "sum", 0.1),
                      dict(weight=CLASS_WEIGHT, ignore_index=1, reduction="sum", label_smoothing=0.1)),
    "nll_loss": ("nll_loss", (X, LABELS), (CLASS_WEIGHT, None, -100, None, "none"),
                 dict(weight=CLASS_WEIGHT, reduction="none")),
    "binary_cross_entropy": ("binary_cross_entropy", (PROBS, TARGET), (CLASS_WEIGHT, None, None, "sum"),
                             dict(weight=CLASS_WEIGHT, reduction="sum")),
    "binary_cross_entropy_with_logits": ("binary_cross_entropy_with_logits", (X, TARGET),
                                         (None, None, None, "sum", CLASS_WEIGHT),
                                         dict(reduction="sum", pos_weight=CLASS_WEIGHT)),
}


def call(lib, name, arrays, params, keyword: bool):
    """``lib.name(*tensors, *params)`` or ``lib.name(*tensors, **params)``; (output, the input tensors)."""
    make = dg.tensor if lib is F else torch.tensor
    tensors = [make(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]

    def convert(v):
        return make(v.copy()) if isinstance(v, np.ndarray) else v

    fn = getattr(lib, name, None) or getattr(torch, name)  # torch.flatten is not in torch.nn.functional
    if keyword:
        out = fn(*tensors, **{k: convert(v) for k, v in params.items()})
    else:
        out = fn(*tensors, *map(convert, params))
    return out, tensors


@pytest.mark.parametrize("case", sorted(CASES))
def test_functional_by_position_and_by_keyword_like_torch(case):
    name, arrays, positional, keywords = CASES[case]
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mse_loss(x, y, None, None, ...): the legacy flags, as torch
        for lib, keyword in ((F, False), (F, True), (TF, False), (TF, True)):
            out, tensors = call(lib, name, arrays, keywords if keyword else positional, keyword)
            v = np.random.default_rng(0).standard_normal(tuple(out.shape))
            out.backward((dg.tensor if lib is F else torch.tensor)(v))
            grads = [t.grad.numpy() for t in tensors if t.requires_grad]
            results.append((out.detach().numpy(), grads))
    (ours_pos, ours_kw, torch_pos, torch_kw) = results
    for got, want in ((ours_pos, ours_kw), (ours_pos, torch_pos), (ours_kw, torch_kw)):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-10, atol=1e-12)
        assert len(got[1]) == len(want[1])
        for a, b in zip(got[1], want[1]):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_batch_norm_by_position_and_by_keyword_like_torch():
    x0 = R.standard_normal((6, 3))
    outs = []
    for lib, keyword in ((F, False), (F, True), (TF, False), (TF, True)):
        make = dg.tensor if lib is F else torch.tensor
        x = make(x0.copy(), requires_grad=True)
        w, b = make(CLASS_WEIGHT.copy(), requires_grad=True), make(BIAS.copy(), requires_grad=True)
        rm, rv = make(np.zeros(3)), make(np.ones(3))
        if keyword:
            y = lib.batch_norm(x, rm, rv, weight=w, bias=b, training=True, momentum=0.3, eps=1e-3)
        else:
            y = lib.batch_norm(x, rm, rv, w, b, True, 0.3, 1e-3)
        (y * y).sum().backward()
        outs.append([y.detach().numpy(), rm.numpy(), rv.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_tensor_clamp_by_position_and_by_keyword_like_torch():
    a = np.array([-1.0, -0.2, 0.3, 0.9])
    grads = []
    for make, call_ in ((dg.tensor, lambda t: t.clamp(-0.5, 0.7)), (dg.tensor, lambda t: t.clamp(min=-0.5, max=0.7)),
                        (torch.tensor, lambda t: t.clamp(-0.5, 0.7))):
        x = make(a.copy(), requires_grad=True)
        y = call_(x)
        (y * y).sum().backward()
        grads.append((y.detach().numpy(), x.grad.numpy()))
    for other in grads[1:]:
        np.testing.assert_array_equal(grads[0][0], other[0])
        np.testing.assert_array_equal(grads[0][1], other[1])
