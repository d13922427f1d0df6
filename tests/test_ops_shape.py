"""Shape ops beyond the op table: PyTorch's results for the Tensor methods and their argument forms,
second derivatives through cat/stack, clone/contiguous, zero-size tensors and error messages."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.testing import gradgradcheck
from like_torch import X, check_like_torch, torch


def test_cat_and_stack_backward_through_getitem_twice():
    a, b = (dg.tensor(np.random.default_rng(k).standard_normal((2, 3)), requires_grad=True) for k in (1, 2))
    assert gradgradcheck(lambda a, b: dg.cat([a * a, b], dim=1), [a, b])
    assert gradgradcheck(lambda a, b: dg.stack([a, b * a], dim=-1), [a, b])


@pytest.mark.parametrize("name,args", [
    ("permute", (2, 0, 1)), ("permute", ((1, 2, 0),)), ("transpose", (0, 2)), ("swapaxes", (-1, 1)),
    ("squeeze", ()), ("unsqueeze", (-1,)), ("flatten", ()), ("flatten", (1,)), ("flatten", (0, 1)),
    ("reshape", (-1, 6)), ("view", (12, 5)), ("repeat", (2, 1, 1, 2)), ("movedim", (0, -1)),
    ("movedim", ((0, 1), (2, 0))),
])
def test_shape_methods_like_torch(name, args):
    check_like_torch(lambda x: getattr(x, name)(*args), lambda t: getattr(t, name)(*args))


def test_t_expand_squeeze_and_pad_like_torch():
    check_like_torch(lambda x: x.t(), lambda t: t.t(), X[0])
    check_like_torch(lambda x: x.t(), lambda t: t.t(), X[0, 0])
    check_like_torch(lambda x: x.expand(2, -1, 4, 3), lambda t: t.expand(2, -1, 4, 3), X[:, :1])
    check_like_torch(lambda x: x.expand_as(dg.zeros(4, 5, 3)), lambda t: t.expand_as(torch.zeros(4, 5, 3)), X[:1])
    check_like_torch(lambda x: x.squeeze((0, 2)), lambda t: t.squeeze((0, 2)), X[:1, :, :1])
    check_like_torch(lambda x: x.squeeze(1), lambda t: t.squeeze(1), X[:1, :, :1])
    for p, value in [((1, 1), 0.0), ((2, 0, 0, 3), -1.5), ((-1, 2, 1, -2, 0, 1), 2.0)]:
        check_like_torch(lambda x, p=p, v=value: dg.pad(x, p, value=v),
                         lambda t, p=p, v=value: torch.nn.functional.pad(t, p, value=v))


def test_clone_and_contiguous():
    x = dg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not np.shares_memory(c.data, x.data)
    assert x.contiguous() is x
    tr = x.t().contiguous()
    assert tr.data.flags.c_contiguous and tr.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    (tr * dg.tensor(np.arange(6.0).reshape(3, 2))).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]


def test_zero_size_tensors():
    e = dg.tensor(np.zeros((0, 4)), requires_grad=True)
    assert e.reshape(-1, 2).shape == (0, 2) and e.t().shape == (4, 0)
    assert dg.cat([e, dg.ones(1, 4).double()]).shape == (1, 4)
    e.reshape(2, 0).sum().backward()
    assert e.grad.shape == (0, 4)


@pytest.mark.parametrize("call,error,message", [
    (lambda x: x.reshape(7, -1), RuntimeError, r"shape \[7, -1\] is invalid for input of size 60"),
    (lambda x: x.view(2, 2), RuntimeError, "invalid for input of size 60"),
    (lambda x: x.permute(1, 0), RuntimeError, r"3 dimensions \(shape \(4, 5, 3\)\) but 2 dims"),
    (lambda x: x.permute(0, 1, 1), RuntimeError, "duplicate dims"),
    (lambda x: x.permute(0, 1, 3), IndexError, "dim 3 is out of range for a tensor of 3 dimensions"),
    (lambda x: x.transpose(0, 3), IndexError, "dim1 3 is out of range"),
    (lambda x: x.t(), RuntimeError, "at most 2 dimensions|<= 2 dimensions"),
    (lambda x: x.unsqueeze(5), IndexError, r"unsqueeze: dim 5 is out of range \[-4, 3\]"),
    (lambda x: x.expand(4, 6, 3), RuntimeError, r"expanded size \(6\) must match the existing size \(5\)"),
    (lambda x: x.expand(5, 3), RuntimeError, "number of sizes given"),
    (lambda x: x.flatten(2, 1), RuntimeError, "start_dim"),
    (lambda x: dg.pad(x, (1,)), ValueError, "even length"),
    (lambda x: dg.pad(x, (-2, -2)), ValueError, "negative"),
    (lambda x: dg.pad(x, (1, 1), mode="reflect"), NotImplementedError, "reflect"),
    (lambda x: x.repeat(2, 2), RuntimeError, "cannot be smaller"),
    (lambda x: dg.cat([x, dg.ones(4, 4, 3).double()]), ValueError, "differ outside dim 0"),
])
def test_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(dg.tensor(X.copy(), requires_grad=True))
