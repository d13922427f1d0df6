"""Shape ops and indexing beyond the op table: PyTorch's results for many index forms, accumulation of
repeated indices, views, second derivatives, split/chunk/gather..., zero-size tensors and error messages."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.autograd import grad as dg_grad
from deltagrad.testing import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((4, 5, 3))


def pair(a=X):
    a = np.asarray(a, dtype=np.float64)
    return dg.tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)


def both(index):
    """The index for deltagrad (arrays as dg tensors) and for torch (arrays as torch tensors)."""
    def conv(i, lib):
        if isinstance(i, np.ndarray):
            return dg.tensor(i) if lib == "dg" else torch.as_tensor(i)
        return i
    if isinstance(index, tuple):
        return tuple(conv(i, "dg") for i in index), tuple(conv(i, "t") for i in index)
    return conv(index, "dg"), conv(index, "t")


def check_like_torch(f_dg, f_torch, a=X, seed=0):
    x, tx = pair(a)
    ours, theirs = f_dg(x), f_torch(tx)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    v = np.random.default_rng(seed).standard_normal(ours.shape)
    ours.backward(dg.tensor(v))
    theirs.backward(torch.tensor(v))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


INDICES = [
    1, -1, (2, -3), (slice(None), 1), (slice(1, None, 2), slice(None, None, 3)), (None, 0, None),
    (Ellipsis, 1), (1, Ellipsis, None), (Ellipsis,), (slice(10, 20),), (0, 1, 2),
    [0, 2, 0], np.array([3, -1, 3, 3]), (np.array([0, 1, 1]), np.array([4, 4, 0])),
    (np.array([[0], [3]]), slice(None), np.array([2, 2, 0])),  # advanced split by a slice: broadcast dims first
    (slice(None), np.array([[1, 1], [0, 4]])), (Ellipsis, [1, 1]), (range(1, 3),), np.array(2),
    X[:, :, 0] > 0, (X[:, 0, 0] > 0, 2), (slice(None), np.array([True, False, True, True, False])),
    (np.array([1, 3]), np.isin(np.arange(15).reshape(5, 3), [5, 12])),  # a 2-D mask beside an index array
]


@pytest.mark.parametrize("index", INDICES, ids=range(len(INDICES)))
def test_getitem_forward_and_backward_like_torch(index):
    ours_i, theirs_i = both(index)
    check_like_torch(lambda x: x[ours_i], lambda t: t[theirs_i])


def test_repeated_indices_accumulate():
    x = dg.tensor(np.zeros(3), requires_grad=True)
    x[[0, 2, 0, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("index", [(1, slice(None, None, 2)), np.array([0, 2, 0]), (X[..., 0] > 0,)])
def test_indexing_is_twice_differentiable(index):
    ours_i, _ = both(index)
    x = dg.tensor(X.copy(), requires_grad=True)
    assert gradgradcheck(lambda x: x[ours_i] * x[ours_i], [x])
    (g,) = dg_grad((x[ours_i] ** 3).sum(), x, create_graph=True)
    assert g.requires_grad


def test_cat_and_stack_backward_through_getitem_twice():
    a, b = (dg.tensor(np.random.default_rng(k).standard_normal((2, 3)), requires_grad=True) for k in (1, 2))
    assert gradgradcheck(lambda a, b: dg.cat([a * a, b], dim=1), [a, b])
    assert gradgradcheck(lambda a, b: dg.stack([a, b * a], dim=-1), [a, b])


def test_negative_step_slices_and_flip_like_torch():
    check_like_torch(lambda x: x[::-1, :, 1::-1], lambda t: t.flip(0)[:, :, :2].flip(2))
    check_like_torch(lambda x: x.flip(0, 2), lambda t: t.flip(0, 2))
    check_like_torch(lambda x: dg.flip(x, [-1]), lambda t: torch.flip(t, [-1]))


def test_basic_indexing_is_a_view_and_advanced_a_copy():
    x = dg.tensor(np.arange(6.0).reshape(2, 3))
    v = x[0, 1:]
    x[0, 2] = 10.0
    assert v.tolist() == [1.0, 10.0]
    c = x[[0, 0]]
    x[0, 0] = -1.0
    assert c.tolist()[0][0] == 0.0
    s = x[1, 2]
    assert s.shape == () and s.item() == 5.0


def test_view_shares_the_version_counter_so_inplace_changes_are_caught():
    w = dg.tensor(np.ones(3), requires_grad=True)
    r = dg.exp(w)
    view = r[0:2]
    out = (r * r).sum()
    with dg.no_grad():
        view.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        out.backward()


@pytest.mark.parametrize("name,args", [
    ("permute", (2, 0, 1)), ("permute", ((1, 2, 0),)), ("transpose", (0, 2)), ("swapaxes", (-1, 1)),
    ("squeeze", ()), ("unsqueeze", (-1,)), ("flatten", ()), ("flatten", (1,)), ("flatten", (0, 1)),
    ("reshape", (-1, 6)), ("view", (12, 5)), ("repeat", (2, 1, 1, 2)), ("movedim", (0, -1)),
    ("movedim", ((0, 1), (2, 0))), ("narrow", (1, 1, 3)), ("narrow", (-1, -2, 2)),
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


@pytest.mark.parametrize("spec", [2, 3, [1, 3, 0], [4]])
def test_split_chunk_unbind_like_torch(spec):
    x, tx = pair(X)
    ours, theirs = x.split(spec, dim=0), tx.split(spec, dim=0)
    assert [o.shape for o in ours] == [tuple(t.shape) for t in theirs]
    total, ttotal = sum((o * (k + 1)).sum() for k, o in enumerate(ours)), \
        sum((o * (k + 1)).sum() for k, o in enumerate(theirs))
    total.backward()
    ttotal.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    for n in (1, 2, 3, 4, 7):
        assert [o.shape for o in dg.chunk(x, n, 1)] == [tuple(t.shape) for t in torch.chunk(tx, n, 1)]
    assert [o.tolist() for o in x.detach().unbind(2)] == [t.tolist() for t in tx.detach().unbind(2)]


def test_gather_and_index_select_like_torch():
    idx = np.array([[0, 2, 2], [1, 0, 0], [3, 3, 3]])  # repeated: gradients accumulate
    check_like_torch(lambda x: x.gather(0, dg.tensor(idx)), lambda t: t.gather(0, torch.as_tensor(idx)), X[:, 0])
    check_like_torch(lambda x: dg.gather(x, 1, dg.tensor(idx[:2, :2])),
                     lambda t: torch.gather(t, 1, torch.as_tensor(idx[:2, :2])), X[:, :, 0])
    sel = np.array([4, 0, 4])
    check_like_torch(lambda x: x.index_select(1, dg.tensor(sel)), lambda t: t.index_select(1, torch.as_tensor(sel)))
    x = dg.tensor(X[:, 0].copy(), requires_grad=True)
    assert gradcheck(lambda x: x.gather(1, dg.tensor(idx[:, :2] % 3)), [x])


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
    assert e.reshape(-1, 2).shape == (0, 2) and e.t().shape == (4, 0) and e[:, 1:].shape == (0, 3)
    assert e[np.zeros(0, dtype=np.int64)].shape == (0, 4)
    assert dg.cat([e, dg.ones(1, 4).double()]).shape == (1, 4)
    assert [p.shape for p in e.split(2, dim=1)] == [(0, 2), (0, 2)]
    (e.sum() + e[:, 0].sum()).backward()
    assert e.grad.shape == (0, 4)
    assert [c.shape for c in e.chunk(3)] == [tuple(c.shape) for c in torch.zeros(0, 4).chunk(3)]
    x = dg.tensor(np.arange(3.0))
    assert x[3:].shape == (0,) and x[x > 5].shape == (0,)


def test_float32_stays_float32_through_indexing():
    x = dg.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    y = x[[0, 0, 2]] + x[1:2]
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [[2.0, 2.0], [3.0, 3.0], [1.0, 1.0]]


@pytest.mark.parametrize("call,error,message", [
    (lambda x: x[4], IndexError, "index 4 is out of bounds for dimension 0 with size 4"),
    (lambda x: x[:, -6], IndexError, "index -6 is out of bounds for dimension 1 with size 5"),
    (lambda x: x[[0, 7]], IndexError, "index 7 is out of bounds for dimension 0 with size 4"),
    (lambda x: x[..., dg.tensor([3])], IndexError, "index 3 is out of bounds for dimension 2 with size 3"),
    (lambda x: x[0, 0, 0, 0], IndexError, "too many indices for tensor of dimension 3"),
    (lambda x: x[..., ...], IndexError, "single ellipsis"),
    (lambda x: x[dg.tensor([True, False])], IndexError, r"shape of the mask \[2\] at index 0 does not match"),
    (lambda x: x[dg.tensor([0.5])], IndexError, "must be long, int or bool"),
    (lambda x: x["a"], TypeError, "invalid index of type str"),
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
    (lambda x: x.split([1, 2]), ValueError, r"add up to 4"),
    (lambda x: x.narrow(0, 3, 2), IndexError, "exceeds the size 4"),
    (lambda x: x.repeat(2, 2), RuntimeError, "cannot be smaller"),
    (lambda x: x.gather(0, dg.tensor([0])), RuntimeError, "gather: index of shape"),
    (lambda x: dg.cat([x, dg.ones(4, 4, 3).double()]), ValueError, "differ outside dim 0"),
])
def test_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(dg.tensor(X.copy(), requires_grad=True))
