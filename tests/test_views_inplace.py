"""In-place changes and views, as PyTorch: never a silently wrong gradient.

Each program below runs in deltagrad and in torch (the same code: the names are PyTorch's). Where torch
succeeds, the values and gradients agree; where torch raises, deltagrad raises the same error. The programs
cover views made with grad on, off and under no_grad, slices, reshape/view, transpose, unsqueeze, expand,
in-place ops recorded in the graph (``h += 1``, ``h[i] = v``, ``mul_`` through a view), the version check
of saved values, leaves, ``retain_graph`` and ``.data``.
"""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg

torch = pytest.importorskip("torch")

A = np.array([0.5, -1.0, 2.0])
M = np.arange(6.0).reshape(2, 3) / 4 - 0.3


def f64(fw, a, grad=False):
    return fw.tensor(np.array(a, dtype=np.float64), requires_grad=grad)


# ---- programs: fw is deltagrad or torch; each returns what to compare ---------------------------------------------


def saved_other_changed(fw):  # mul saves w for x's gradient
    x, w = f64(fw, A, True), f64(fw, A + 1, True)
    y = (x * w).sum()
    with fw.no_grad():
        w.mul_(2)
    y.backward()
    return [x.grad, w.grad]


def unsaved_changed(fw):  # only w requires grad: mul saved x, not w
    x, w = f64(fw, A), f64(fw, A + 1, True)
    y = (x * w).sum()
    with fw.no_grad():
        w.mul_(2)
    y.backward()
    return [w.grad]


def matmul_weight_slice_zeroed_unneeded(fw):  # x @ w with only w requiring grad: w's values are not needed
    x, w = f64(fw, M), f64(fw, M.T, True)
    y = (x @ w).sum()
    with fw.no_grad():
        w[:2].zero_()
    y.backward()
    return [w.grad]


def matmul_weight_slice_zeroed_needed(fw):  # ... with x requiring grad too: w[:2].zero_() must be caught
    x, w = f64(fw, M, True), f64(fw, M.T, True)
    y = (x @ w).sum()
    with fw.no_grad():
        w[:2].zero_()
    y.backward()
    return [x.grad]


def leaf_view_changed_before_sin(fw):  # sin saves its input: x.view(...).mul_(5) is caught
    x = f64(fw, M, True)
    y = x.sin()
    with fw.no_grad():
        x.view(6).mul_(5)
    y.sum().backward()
    return [x.grad]


def leaf_view_changed_before_sigmoid(fw):  # sigmoid saves its output, not its input: fine
    x = f64(fw, M, True)
    y = x.sigmoid()
    with fw.no_grad():
        x.view(6).mul_(5)
    y.sum().backward()
    return [x.grad]


def output_changed_after_exp(fw):
    x = f64(fw, A, True)
    h = x.exp()
    h.add_(1)
    h.sum().backward()


def output_changed_through_detach(fw):
    x = f64(fw, A, True)
    y = x.exp()
    y.detach().add_(1)
    y.sum().backward()


def input_changed_after_sin(fw):
    x = f64(fw, A, True)
    h = x * 1
    s = h.sin()
    h.add_(1)
    s.sum().backward()


def pow_in_place(fw):  # pow_ needs the old value: kept
    x = f64(fw, A, True)
    h = x * 1
    h.pow_(2)
    h.sum().backward()
    return [x.grad, h]


def mul_in_place_by_a_tensor_requiring_grad(fw):
    x, c = f64(fw, A, True), f64(fw, A * 2, True)
    h = x * 1
    h.mul_(c)
    h.sum().backward()
    return [c.grad, x.grad, h]


def mul_in_place_by_itself(fw):
    x = f64(fw, A, True)
    h = x * 1
    h.mul_(h)
    h.sum().backward()


def iadd_on_a_graph_tensor(fw):  # h += 1: in place, recorded; an earlier use of h keeps the old history
    x = f64(fw, A, True)
    h = x * 2
    alias = h
    y = h.sum() * 3
    h += 1
    h *= 4
    (h.sum() + y).backward()
    return [x.grad, h, alias]


def add_in_place_with_alpha(fw):
    x = f64(fw, A, True)
    h = x * 1
    h.add_(f64(fw, A, True), alpha=2)
    h.sum().backward()
    return [x.grad, h]


def clamp_zero_sigmoid_in_place(fw):
    x = f64(fw, A, True)
    h = x * 1
    h.clamp_(-0.5, 1.0)
    g = x * 3
    g.sigmoid_()
    z = x * 1
    z.zero_()
    (h * h + g + z).sum().backward()
    return [x.grad, h, g]


def slice_of_a_graph_tensor_changed(fw):
    x = f64(fw, A, True)
    h = x * 2
    h[:2].mul_(3)
    h.sum().backward()
    return [x.grad, h]


def other_view_after_a_view_changed(fw):  # b sees a's change, and so does its gradient
    x = f64(fw, A, True)
    h = x * 2
    a, b = h[:2], h[1:]
    a.mul_(3)
    b.sum().backward()
    return [x.grad, b]


def old_view_after_the_base_changed(fw):
    x = f64(fw, A, True)
    h = x * 1
    v = h[:2]
    h.mul_(3)
    (v * 1).sum().backward()
    return [x.grad, v]


def view_mul_in_place(fw):
    x = f64(fw, M, True)
    h = x * 1
    h.view(6).mul_(5)
    h.sum().backward()
    return [x.grad]


def transpose_view_in_place(fw):
    x = f64(fw, M, True)
    h = x * 1
    h.t().mul_(2)
    (h * h).sum().backward()
    return [x.grad, h]


def view_of_a_view_in_place(fw):
    x = f64(fw, M, True)
    h = x * 1
    w = h.unsqueeze(0).transpose(1, 2)[0, 1:]
    w.add_(fw.ones(2, 2, dtype=fw.float64))
    (h * h).sum().backward()
    return [x.grad, h]


def reshape_view_item_assignment(fw):
    x = f64(fw, M, True)
    h = x * 1
    r = h.reshape(3, 2)
    r[0] = f64(fw, [7.0, 8.0])
    (h * h).sum().backward()
    return [x.grad, h]


def view_saved_then_changed(fw):
    x = f64(fw, A, True)
    v = (x * 1)[1:]
    y = v * v
    v.add_(1)
    y.sum().backward()


def expanded_view_in_place(fw):
    h = f64(fw, M, True) * 1
    h.expand(2, 2, 3).mul_(2)


def item_assignment_in_a_graph(fw):
    x = f64(fw, A, True)
    h = x * 1
    h[0] = 5
    h.sum().backward()
    return [x.grad, h]


def item_assignment_of_a_tensor_requiring_grad(fw):
    w = f64(fw, A, True)
    h = fw.zeros(3, dtype=fw.float64)
    h[1:] = w[:2] * 2
    h.sum().backward()
    return [w.grad, h]


def repeated_index_assignment(fw):
    x, v = f64(fw, A, True), f64(fw, [5.0, 6.0], True)
    h = x * 1
    h[[0, 2]] = v
    (h * h).sum().backward()
    return [x.grad, v.grad, h]


def copy_into_a_plain_base_seen_by_its_view(fw):
    h = fw.zeros(4, dtype=fw.float64)
    x = f64(fw, A[:2], True)
    v = h[:2]
    h.copy_(fw.cat([x, x]))
    (v * 3).sum().backward()
    return [x.grad, v.requires_grad]


def zero_in_place_in_a_graph(fw):
    x = f64(fw, A, True)
    h = x * 1
    h.zero_()
    h.sum().backward()
    return [x.grad, h]


def leaf_in_place(fw):
    f64(fw, A, True).add_(1)


def view_of_leaf_in_place(fw):
    w = f64(fw, A, True)
    w[:2].zero_()


def no_grad_view_of_leaf_changed_with_grad_on(fw):
    w = f64(fw, A, True)
    with fw.no_grad():
        v = w[:2]
    v.zero_()


def no_grad_view_of_leaf_changed_under_no_grad(fw):  # allowed, and the base sees it
    w = f64(fw, A, True)
    with fw.no_grad():
        w[:2].zero_()
    (w * w).sum().backward()
    return [w, w.grad]


def no_grad_view_of_a_plain_tensor_given_a_gradient(fw):
    b = fw.zeros(3, dtype=fw.float64)
    with fw.no_grad():
        v = b[:2]
    v.copy_(f64(fw, A[:2], True))


def no_grad_view_of_a_graph_tensor_changed(fw):
    h = f64(fw, A, True) * 1
    with fw.no_grad():
        v = h[:2]
    v.mul_(2)


def graph_view_changed_under_no_grad(fw):  # not recorded; the sum's backward needs no values
    x = f64(fw, A, True)
    h = x * 1
    with fw.no_grad():
        h[:2].mul_(2)
    h.sum().backward()
    return [x.grad, h]


def retain_graph_then_change(fw):
    x = f64(fw, A, True)
    h = x.tanh()
    loss = h.sum()
    loss.backward(retain_graph=True)
    h.add_(1)
    loss.backward()


def data_edits_are_not_tracked(fw):  # as torch: .data is outside autograd (the gradient uses the new x)
    x = f64(fw, A, True)
    y = (x * x).sum()
    d = x.data
    d *= 2
    y.backward()
    return [x.grad, x]


def detach_in_place_of_a_view(fw):
    y = f64(fw, A, True) * 2
    y[:2].detach_()


def detached_copy_changed_in_place(fw):  # the detached tensor shares the counter, not the history
    x = f64(fw, A, True)
    h = x * 1
    d = h.detach()
    d.mul_(2)
    (h * 1).sum().backward()
    return [x.grad, h]


PROGRAMS = [saved_other_changed, unsaved_changed, matmul_weight_slice_zeroed_unneeded,
            matmul_weight_slice_zeroed_needed, leaf_view_changed_before_sin, leaf_view_changed_before_sigmoid,
            output_changed_after_exp, output_changed_through_detach, input_changed_after_sin, pow_in_place,
            mul_in_place_by_a_tensor_requiring_grad, mul_in_place_by_itself, iadd_on_a_graph_tensor,
            add_in_place_with_alpha, clamp_zero_sigmoid_in_place, slice_of_a_graph_tensor_changed,
            other_view_after_a_view_changed, old_view_after_the_base_changed, view_mul_in_place,
            transpose_view_in_place, view_of_a_view_in_place, reshape_view_item_assignment, view_saved_then_changed,
            expanded_view_in_place, item_assignment_in_a_graph, item_assignment_of_a_tensor_requiring_grad,
            repeated_index_assignment, copy_into_a_plain_base_seen_by_its_view, zero_in_place_in_a_graph,
            leaf_in_place, view_of_leaf_in_place, no_grad_view_of_leaf_changed_with_grad_on,
            no_grad_view_of_leaf_changed_under_no_grad, no_grad_view_of_a_plain_tensor_given_a_gradient,
            no_grad_view_of_a_graph_tensor_changed, graph_view_changed_under_no_grad, retain_graph_then_change,
            data_edits_are_not_tracked, detach_in_place_of_a_view, detached_copy_changed_in_place]


def outcome(fw, program):
    """The program's values as arrays, or the RuntimeError it raised."""
    try:
        out = program(fw)
    except RuntimeError as e:
        return e
    return [v if v is None or isinstance(v, bool) else v.detach().numpy().copy() for v in out or []]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_like_torch(program):
    ours, theirs = outcome(dg, program), outcome(torch, program)
    if isinstance(theirs, RuntimeError):
        assert isinstance(ours, RuntimeError), f"torch raises {theirs!s:.100}, deltagrad does not"
        assert str(ours).lower()[:30] == str(theirs).lower()[:30], (str(ours), str(theirs))
        return
    assert not isinstance(ours, RuntimeError), f"deltagrad raises where torch does not: {ours}"
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if a is None or isinstance(a, bool):
            assert a == b
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# ---- what the error says, and what stays the same object -----------------------------------------------------------


def test_the_error_names_the_node_whose_backward_needs_the_value():
    x, c = dg.tensor(np.ones(3), requires_grad=True), dg.tensor(np.ones(3))
    y = (c * x).sum()                   # x's gradient reads c
    x2 = dg.tensor(np.ones((2, 3)), requires_grad=True)
    w = dg.tensor(np.ones((3, 2)), requires_grad=True)
    z = (x2 @ w).sum()
    with dg.no_grad():
        c.mul_(2)
        w[:1].zero_()
    with pytest.raises(RuntimeError, match=r"input 0 of <MulBackward> \(a float64 tensor of shape \(3,\)\) is at "
                                           r"version 1; expected version 0"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"input 1 of <MatmulBackward>"):
        z.backward()
    e = dg.tensor(np.ones(2), requires_grad=True).exp()
    e.add_(1)
    with pytest.raises(RuntimeError, match=r"the output of <ExpBackward> is at version 1; expected version 0"):
        e.sum().backward()


def test_backward_from_a_view_whose_base_changed_uses_the_new_history():
    outs = []
    for fw in (dg, torch):
        x = f64(fw, A, True)
        h = x * 2
        v = h[1:]
        h.mul_(3)
        v.backward(f64(fw, [1.0, 1.0]))
        outs.append(x.grad.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


def test_in_place_keeps_the_object_and_its_aliases_see_the_change():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    alias, view = h, h[1:]
    h += 1
    assert h is alias and h.grad_fn is not None and not h.is_leaf
    np.testing.assert_array_equal(alias.data, [3.0, 5.0])
    np.testing.assert_array_equal(view.data, [5.0])
    assert h._version[0] == view._version[0] == 1


@pytest.mark.parametrize("make", [lambda t: t[1:], lambda t: t.view(2, 2), lambda t: t.reshape(4), lambda t: t.t(),
                                  lambda t: t.unsqueeze(0), lambda t: t.squeeze(), lambda t: t.expand(2, 2, 2),
                                  lambda t: t.flatten(), lambda t: t.transpose(0, 1)[0], lambda t: t.detach()])
@pytest.mark.parametrize("mode", ["grad", "no_grad", "leaf"])
def test_views_share_the_version_counter_in_every_mode(make, mode):
    base = dg.tensor(np.ones((2, 2)), requires_grad=mode != "leaf")
    src = base * 1 if mode == "grad" else base
    if mode == "no_grad":
        with dg.no_grad():
            view = make(src)
    else:
        view = make(src)
    assert view._version is src._version
    with dg.no_grad():
        src.add_(1)
    assert view._version[0] == 1


def test_a_reshape_that_copies_is_no_view():
    x = dg.tensor(np.ones((2, 3)), requires_grad=True) * 1
    r = x.t().reshape(6)  # NumPy had to copy: changing r does not change x
    assert r._version is not x._version
    r.add_(1)
    np.testing.assert_array_equal(x.data, np.ones((2, 3)))


def test_integer_tensor_in_place_with_a_float_raises():
    t = dg.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="can't be cast"):
        t += 2.5


def test_in_place_with_a_larger_broadcast_raises():
    h = dg.tensor(np.ones(3), requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        h.add_(dg.tensor(np.ones((2, 3))))


def test_second_order_through_an_in_place_change():
    """h *= x recorded as a node: the Hessian of Σ (x²)·x = Σ x³ is 6x, as through the out-of-place program."""
    x = dg.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    h = x * x
    h *= x
    (g,) = dg.autograd.grad(h.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    (gg,) = dg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.data, 6 * x.data)


def test_a_captured_step_with_in_place_changes_replays_as_eager():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 3))
    xs = [rng.standard_normal((4, 3)) for _ in range(4)]

    def run(captured: bool):
        w = dg.tensor(w0.copy(), requires_grad=True)
        opt = dg.optim.SGD([w], lr=0.1)

        def step(x):
            opt.zero_grad()
            h = x @ w
            h += 1                      # in place on a graph tensor
            h[:, :2].mul_(2)            # through a view
            h = h.tanh()
            loss = (h * h).sum()
            loss.backward()
            opt.step()
            return loss

        fn = dg.capture(step) if captured else step
        return [(fn(dg.tensor(x)).item(), w.data.copy()) for x in xs]

    for (le, we), (lr, wr) in zip(run(False), run(True)):
        assert le == lr
        np.testing.assert_array_equal(we, wr)


def test_a_captured_step_refuses_recorded_changes_of_outside_tensors():
    outside = dg.zeros(3, dtype=np.float64)

    def step(x):
        outside.copy_(x * 2)            # a tensor of no step: its change could not be replayed
        return outside.sum()

    with pytest.raises(dg.autograd.CaptureError, match="outside the captured step"):
        dg.capture(step)(dg.tensor(np.ones(3), requires_grad=True))


# ---- property: random views and in-place changes against torch ------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

VIEWS = {  # each a view of any tensor of at least one dimension (0-d ones pass through)
    "slice": lambda t, k: t[k % t.shape[0]:],
    "row": lambda t, k: t[k % t.shape[0]],
    "step": lambda t, k: t[..., ::2],
    "t": lambda t, k: t.t() if t.dim() <= 2 else t,
    "view": lambda t, k: t.view(-1) if t.is_contiguous() else t,
    "unsqueeze": lambda t, k: t.unsqueeze(k % 2),
}
CHANGES = {
    "add_": lambda v, y: v.add_(y.reshape(v.shape) if y.numel() == v.numel() else 1.5),
    "mul_": lambda v, y: v.mul_(2.5),
    "copy_": lambda v, y: v.copy_(y.reshape(v.shape) if y.numel() == v.numel() else y.sum()),
    "zero_": lambda v, y: v.zero_(),
    "setitem": lambda v, y: v.__setitem__((0,) if v.dim() else (), y.sum()),
    "iadd": lambda v, y: v.__iadd__(y.sum()),
}


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(views=st.lists(st.sampled_from(sorted(VIEWS)), min_size=0, max_size=2),
                  change=st.sampled_from(sorted(CHANGES)), k=st.integers(0, 3), use_before=st.booleans(),
                  under_no_grad=st.booleans())
def test_random_views_and_changes_like_torch(views, change, k, use_before, under_no_grad):
    a, b = np.arange(6.0).reshape(2, 3) / 3 - 0.4, np.linspace(-1, 1, 6)

    def program(fw):
        x, y = f64(fw, a, True), f64(fw, b, True)
        h = x.sin()                     # saves x; its output is free to change
        before = (h * 3).sum() if use_before else 0
        v = h
        for name in views:
            v = VIEWS[name](v, k) if v.dim() and v.numel() else v
        if v.dim() == 0 and change == "setitem":
            return None
        if under_no_grad:
            with fw.no_grad():
                CHANGES[change](v, y.detach())
        else:
            CHANGES[change](v, y)
        ((h * h).sum() + before).backward()
        return [x.grad, y.grad, h, v]

    ours, theirs = outcome(dg, program), outcome(torch, program)
    if isinstance(theirs, RuntimeError):
        assert isinstance(ours, RuntimeError), str(theirs)
        return
    assert not isinstance(ours, RuntimeError), str(ours)
    for p, q in zip(ours, theirs):
        if p is None or q is None:
            assert p is None and q is None
        else:
            np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)
