"""The reverse pass: accumulation, freeing, errors, hooks, higher order, deep graphs, special values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.autograd import grad


def f64(*values, requires_grad=True):
    return dg.tensor(np.array(values, dtype=np.float64), requires_grad=requires_grad)


def test_reused_value_accumulates():
    x = f64(2.0, -1.0)
    y = x * x + x + x.exp() * x          # the value x feeds four nodes
    y.sum().backward()
    expected = 2 * x.data + 1 + np.exp(x.data) * (1 + x.data)
    np.testing.assert_allclose(x.grad.data, expected)


def test_diamond_graph_counts_each_path_once():
    x = f64(0.3)
    a = x.tanh()
    b = a * a + a                       # two paths from a
    b.backward()
    t = np.tanh(0.3)
    np.testing.assert_allclose(x.grad.data, [(2 * t + 1) * (1 - t * t)])


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = f64(1.0, 2.0)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [6.0, 6.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_leaf_gradients_never_alias_each_other():
    x, y = f64(1.0, 2.0), f64(3.0, 4.0)
    (x + y).sum().backward()            # add passes one array to both inputs
    x.grad.zero_()
    np.testing.assert_allclose(y.grad.data, [1.0, 1.0])


def test_broadcast_gradients_are_summed_back_to_input_shape():
    a = dg.tensor(np.ones((2, 3)), requires_grad=True)
    b = dg.tensor(np.ones((3,)), requires_grad=True)
    c = dg.tensor(np.ones((2, 1)), requires_grad=True)
    (a * b * c).sum().backward()
    assert a.grad.shape == (2, 3) and b.grad.shape == (3,) and c.grad.shape == (2, 1)
    np.testing.assert_allclose(b.grad.data, [2, 2, 2])
    np.testing.assert_allclose(c.grad.data, [[3], [3]])


def test_deep_chain_of_100k_ops_backprops_without_recursion():
    x = f64(0.5)
    y = x
    for _ in range(100_000):
        y = y * 1.0000001
    y.backward()
    np.testing.assert_allclose(x.grad.data, [1.0000001 ** 100_000], rtol=1e-9)


def test_graph_is_freed_after_backward():
    x = f64(1.0)
    y = (x * x).exp()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = f64(1.0)
    y = (x * x).exp()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [2 * 2 * np.e])


def test_non_scalar_backward_needs_a_gradient():
    x = f64(1.0, 2.0)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(dg.tensor(np.array([1.0, 10.0])))
    np.testing.assert_allclose(x.grad.data, [2.0, 20.0])


def test_gradient_shape_mismatch_is_named():
    x = f64(1.0, 2.0)
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(dg.tensor(np.ones(3)))


def test_backward_of_something_that_needs_no_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        f64(1.0, requires_grad=False).sum().backward()


def test_integer_and_bool_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point"):
        dg.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        dg.tensor([True]).requires_grad_()


def test_modifying_a_saved_input_in_place_is_detected():
    x = f64(1.0, 2.0)
    w = f64(3.0, 4.0, requires_grad=False)
    y = (x * w).sum()                    # mul saves w for dx
    with dg.no_grad():
        w.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_modifying_an_output_the_backward_needs_is_detected():
    x = f64(1.0, 2.0)
    y = x.exp()                           # exp' = result
    z = y.sum()
    with dg.no_grad():
        y.detach().add_(1)                # shares the version counter with y
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


def test_in_place_change_of_an_unsaved_input_is_fine():
    x = f64(1.0, 2.0)
    b = f64(5.0, 5.0, requires_grad=False)
    y = (x + b).sum()                     # add saves nothing
    with dg.no_grad():
        b.add_(1)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 1.0])


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    x = f64(1.0)
    with pytest.raises(RuntimeError, match="no_grad"):
        x.add_(1)
    with dg.no_grad():
        x -= 0.5
    np.testing.assert_allclose(x.data, [0.5])


def test_no_grad_context_and_decorator():
    x = f64(1.0)
    with dg.no_grad():
        assert not (x * 2).requires_grad
        with dg.enable_grad():
            assert (x * 2).requires_grad

    @dg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert (x * 2).requires_grad and dg.is_grad_enabled()


def test_autograd_grad_returns_without_touching_dot_grad():
    x, y = f64(1.0, 2.0), f64(3.0)
    z = (x * y).sum()
    gx, gy = grad(z, [x, y])
    np.testing.assert_allclose(gx.data, [3.0, 3.0])
    np.testing.assert_allclose(gy.data, [3.0])
    assert x.grad is None and y.grad is None


def test_autograd_grad_of_an_intermediate_and_unused_inputs():
    x, unused = f64(1.0, 2.0), f64(0.0)
    h = x * 2
    z = (h * h).sum()
    (gh,) = grad(z, [h], retain_graph=True)
    np.testing.assert_allclose(gh.data, 2 * h.data)
    with pytest.raises(RuntimeError, match="not used"):
        grad(z, [unused], retain_graph=True)
    assert grad(z, [unused], allow_unused=True) == (None,)


def test_grad_of_grad():
    x = f64(0.7)
    y = x ** 3 + x.sin()
    (g,) = grad(y, [x], create_graph=True)
    (gg,) = grad(g, [x])
    np.testing.assert_allclose(g.data, [3 * 0.49 + np.cos(0.7)])
    np.testing.assert_allclose(gg.data, [6 * 0.7 - np.sin(0.7)])


def test_backward_with_create_graph_fills_differentiable_grads():
    x = f64(1.5)
    (x ** 4).backward(create_graph=True)
    assert x.grad.requires_grad
    (gg,) = grad(x.grad, [x])
    np.testing.assert_allclose(gg.data, [12 * 1.5 ** 2])


def test_func_transforms_hessian_hvp_jacobian():
    x = f64(1.0, 2.0, requires_grad=False)
    f = lambda v: (v[0] if False else (v * v * v).sum()) + (v.exp() * v).sum()  # noqa: E731
    h = dg.func.hessian(f)(x)
    expected = np.diag(6 * x.data + np.exp(x.data) * (2 + x.data))
    np.testing.assert_allclose(h.data, expected)
    value, hv = dg.func.hvp(f, x, f64(1.0, -1.0, requires_grad=False))
    np.testing.assert_allclose(hv.data, expected @ [1.0, -1.0])
    np.testing.assert_allclose(value.item(), f(x).item())
    jac = dg.func.jacobian(lambda v: v.tanh())(x)
    np.testing.assert_allclose(jac.data, np.diag(1 - np.tanh(x.data) ** 2))
    val, g = dg.func.value_and_grad(f)(x)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2 + np.exp(x.data) * (1 + x.data))
    assert not g.requires_grad and not x.requires_grad


def test_nested_func_grad():
    x = f64(0.5, requires_grad=False)
    d3 = dg.func.grad(dg.func.grad(dg.func.grad(lambda v: (v ** 4).sum())))
    np.testing.assert_allclose(d3(x).data, [24 * 0.5])


def test_tensor_hooks_see_and_replace_gradients():
    x = f64(1.0, 2.0)
    h = x * 3
    seen = []
    h.register_hook(lambda g: seen.append(g.data.copy()))
    handle = x.register_hook(lambda g: g * 10)
    h.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.data, [30.0, 30.0])
    handle()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_retain_grad_keeps_intermediate_gradient():
    x = f64(1.0, 2.0)
    h = x * x
    h.retain_grad()
    (h * 2).sum().backward()
    np.testing.assert_allclose(h.grad.data, [2.0, 2.0])


def test_zero_size_tensors():
    x = dg.tensor(np.zeros((0, 3)), requires_grad=True)
    y = (x * 2).exp().sum()
    assert y.item() == 0.0
    y.backward()
    assert x.grad.shape == (0, 3)
    m = dg.tensor(np.zeros((0,)), requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        assert np.isnan(m.mean().item())
    assert not caught


def test_inf_and_nan_propagate_silently():
    x = dg.tensor(np.array([np.inf, -np.inf, np.nan, 1.0]), requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        y = x * 0 + (x - x) + x.exp() + (x / 0.0)
        y.sum().backward()
    assert not caught, [str(w.message) for w in caught]
    assert np.isnan(y.data[0]) and np.isnan(y.data[2])
    assert np.isnan(x.grad.data[2])


def test_sigmoid_of_huge_inputs_has_no_overflow_warning():
    x = dg.tensor(np.array([-1000.0, 1000.0, 0.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.sigmoid()
        y.sum().backward()
    np.testing.assert_allclose(y.data, [0.0, 1.0, 0.5])
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0, 0.25])
    x32 = dg.tensor([-1000.0, 1000.0])
    assert x32.sigmoid().dtype == np.float32


def test_float32_stays_float32_with_python_scalars():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == np.float32
    y = (x * 2.5 + 1 - 0.5 / (x + 3.0)) ** 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_broadcast_mismatch_names_both_shapes():
    a, b = dg.ones(2, 3), dg.ones(4)
    with pytest.raises(ValueError, match=r"\(2,3\).*\(4,\)"):
        a + b
