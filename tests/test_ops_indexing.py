"""Indexing beyond the op table: PyTorch's results for many index forms, accumulation of repeated indices,
views and copies, second derivatives, split/chunk/unbind/narrow/flip/gather/index_select, zero-size tensors
and error messages."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.autograd import grad as dg_grad
from deltagrad.testing import gradcheck, gradgradcheck
from like_torch import X, check_like_torch, pair, torch


def both(index):
    """The index for deltagrad (arrays as dg tensors) and for torch (arrays as torch tensors)."""
    def conv(i, lib):
        if isinstance(i, np.ndarray):
            return dg.tensor(i) if lib == "dg" else torch.as_tensor(i)
        return i
    if isinstance(index, tuple):
        return tuple(conv(i, "dg") for i in index), tuple(conv(i, "t") for i in index)
    return conv(index, "dg"), conv(index, "t")


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
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


@pytest.mark.parametrize("name,args", [("narrow", (1, 1, 3)), ("narrow", (-1, -2, 2))])
def test_narrow_like_torch(name, args):
    check_like_torch(lambda x: getattr(x, name)(*args), lambda t: getattr(t, name)(*args))


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


def test_large_gather_and_index_select_backward_like_torch():
    # large enough for backend.scatter_add's flat-position path; many repeated indices accumulate
    r = np.random.default_rng(3)
    a, idx, sel = r.standard_normal((64, 50)), r.integers(0, 50, (64, 80)), r.integers(-64, 64, 300)
    check_like_torch(lambda x: x.gather(1, dg.tensor(idx)), lambda t: t.gather(1, torch.as_tensor(idx)), a)
    check_like_torch(lambda x: x[sel], lambda t: t[torch.as_tensor(sel)], a)
    cols = idx[0]
    check_like_torch(lambda x: x.index_select(1, dg.tensor(cols)), lambda t: t.index_select(1, torch.as_tensor(cols)),
                     a)


def test_zero_size_tensors():
    e = dg.tensor(np.zeros((0, 4)), requires_grad=True)
    assert e[:, 1:].shape == (0, 3)
    assert e[np.zeros(0, dtype=np.int64)].shape == (0, 4)
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
    (lambda x: x.split([1, 2]), ValueError, r"add up to 4"),
    (lambda x: x.narrow(0, 3, 2), IndexError, "exceeds the size 4"),
    (lambda x: x.gather(0, dg.tensor([0])), RuntimeError, "gather: index of shape"),
])
def test_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(dg.tensor(X.copy(), requires_grad=True))
