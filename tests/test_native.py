"""The native kernels (src/deltagrad/_native.c) against their NumPy twins in backend.py.

Each backend function is run twice on the same inputs, once with the native module and once with
``backend.native`` set to None (what ``DELTAGRAD_NATIVE=0`` or a missing C compiler gives): the SGD and
Adam updates, the ReLU and the cross-entropy's backward must agree bit for bit (they round step by step as
NumPy does), the cross-entropy's forward to an ulp or two (the C library's exp and log against NumPy's).
"""

from __future__ import annotations

import shutil
import sysconfig

import numpy as np
import pytest

from deltagrad import backend

needs_native = pytest.mark.skipif(backend.native is None, reason="the native module is not built")


@pytest.fixture(autouse=True)
def quiet():
    with np.errstate(all="ignore"):  # as inside ops: inf and NaN propagate without warnings
        yield


def numpy_only(fn, *args, **kwargs):
    saved, backend.native = backend.native, None
    try:
        return fn(*args, **kwargs)
    finally:
        backend.native = saved


def test_the_native_module_is_built_where_a_compiler_is():
    import os

    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if os.environ.get("DELTAGRAD_NATIVE", "1") == "0":
        assert backend.native is None
    elif shutil.which(compiler):
        assert backend.native is not None, "pip install should have built deltagrad._native"


def _logits(rng, n, c, dtype):
    return (rng.standard_normal((n, c)) * 3).astype(dtype)


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tdtype", [np.int32, np.int64])
@pytest.mark.parametrize("n, c", [(1, 1), (5, 3), (32, 10), (128, 10), (7, 300)])
@pytest.mark.parametrize("per_row", [False, True])
def test_softmax_cross_entropy_forward_and_backward(n, c, dtype, tdtype, per_row):
    rng = np.random.default_rng(n * c)
    x, t = _logits(rng, n, c, dtype), rng.integers(0, c, n).astype(tdtype)
    loss, e, sum_e = backend.softmax_cross_entropy(x, t, per_row)
    loss0, e0, sum_e0 = numpy_only(backend.softmax_cross_entropy, x, t, per_row)
    tol = dict(rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(e, e0, **tol)
    np.testing.assert_allclose(sum_e, sum_e0, **tol)
    np.testing.assert_allclose(loss, loss0, rtol=8 * np.finfo(dtype).eps * n, atol=8 * np.finfo(dtype).eps * n)
    assert e.dtype == sum_e.dtype == dtype and (not per_row or loss.dtype == dtype)
    s = dtype(1 / n)
    dx = backend.softmax_cross_entropy_backward(e, sum_e, t, s)
    np.testing.assert_array_equal(dx, numpy_only(backend.softmax_cross_entropy_backward, e, sum_e, t, s))
    assert dx.dtype == dtype


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_huge_infinite_and_nan_logits(dtype):
    big = np.finfo(dtype).max / 4
    x = np.array([[big, -big, 0.0], [1e4, 1e4, -1e4], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0],
                  [np.nan, 0.0, 1.0], [0.0, np.nan, 1.0]], dtype)
    t = np.array([0, 1, 1, 0, 2, 2])
    loss, e, sum_e = backend.softmax_cross_entropy(x, t, True)
    loss0, e0, sum_e0 = numpy_only(backend.softmax_cross_entropy, x, t, True)
    np.testing.assert_allclose(loss, loss0, rtol=1e-6)   # NaN where NumPy has NaN, inf where it has inf
    np.testing.assert_allclose(e, e0, rtol=1e-6)
    np.testing.assert_allclose(loss[:2], [0.0, np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("bad", [3, -1, -100])
@pytest.mark.parametrize("native", [True, False])
def test_softmax_cross_entropy_leaves_out_of_range_targets_to_the_caller(bad, native):
    x, t = np.zeros((4, 3), np.float32), np.array([0, 1, bad, 2])
    run = backend.softmax_cross_entropy if native else lambda *a: numpy_only(backend.softmax_cross_entropy, *a)
    assert run(x, t, False) is None
    assert run(np.zeros((2, 0), np.float32), np.zeros(2, np.int64), True) is None  # no class at all


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3,), (32, 128), (128, 512), (2, 3, 5, 7)])
def test_relu_backward_is_numpys_product(shape, dtype):
    rng = np.random.default_rng(len(shape))
    g, y = rng.standard_normal(shape).astype(dtype), np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    g.reshape(-1)[:3] = [np.nan, -2.0, np.inf]
    y.reshape(-1)[:3] = 0.0     # NaN·0 stays NaN, −2·0 is −0, ∞·0 is NaN: as NumPy's product
    dx, dx0 = backend.relu_backward(g, y), numpy_only(backend.relu_backward, g, y)
    np.testing.assert_array_equal(dx, dx0)
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(dx0))
    assert dx.dtype == dtype and dx.shape == shape


def _sgd_problem(dtype, sizes=((128, 64), (128,), (10, 128), (10,))):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in sizes]
    grads = [rng.standard_normal(s).astype(dtype) for s in sizes]
    bufs = [rng.standard_normal(s).astype(dtype) for s in sizes]
    return params, grads, bufs


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dampening, nesterov", [(0.0, False), (0.3, False), (0.0, True)])
def test_sgd_momentum_equals_numpys_passes_bit_for_bit(dtype, dampening, nesterov):
    a, b = _sgd_problem(dtype), _sgd_problem(dtype)
    for _ in range(3):
        backend.sgd_momentum_(*a, 0.05, 0.9, dampening, nesterov)
        numpy_only(backend.sgd_momentum_, *b, 0.05, 0.9, dampening, nesterov)
    for x, y in zip(a[0] + a[2], b[0] + b[2]):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == dtype


@needs_native
def test_sgd_momentum_with_mixed_dtypes_or_a_bad_array_falls_back_or_fails_before_writing():
    params, grads, bufs = _sgd_problem(np.float32)
    params[1], grads[1], bufs[1] = (a.astype(np.float64) for a in (params[1], grads[1], bufs[1]))
    want = [p.copy() for p in params], [g.copy() for g in grads], [b.copy() for b in bufs]
    backend.sgd_momentum_(params, grads, bufs, 0.1, 0.5, 0.0, False)   # mixed: NumPy does each its own way
    numpy_only(backend.sgd_momentum_, *want, 0.1, 0.5, 0.0, False)
    for x, y in zip(params, want[0]):
        np.testing.assert_array_equal(x, y)

    params, grads, bufs = _sgd_problem(np.float32)
    before = [p.copy() for p in params]
    params[2].flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        backend.native.sgd_momentum(params, grads, bufs, 0.1, 0.5, 0.0, False)
    for x, y in zip(params, before):
        np.testing.assert_array_equal(x, y)   # checked before anything was written


def _adam_problem(dtype, amsgrad, sizes=((128, 64), (128,), (10, 128), (10,))):
    rng = np.random.default_rng(1)
    arrays = [[rng.standard_normal(s).astype(dtype) for s in sizes] for _ in range(3)]    # p, g, m
    arrays.append([np.abs(rng.standard_normal(s)).astype(dtype) for s in sizes])       # v ≥ 0
    arrays.append([np.abs(rng.standard_normal(s)).astype(dtype) for s in sizes] if amsgrad else None)
    arrays[1][0].reshape(-1)[:2] = [np.nan, np.inf]     # NaN and ∞ gradients travel as in NumPy
    return arrays


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_equals_numpys_passes_bit_for_bit(dtype, amsgrad):
    a, b = _adam_problem(dtype, amsgrad), _adam_problem(dtype, amsgrad)
    for step in range(1, 4):
        sizes = [1e-3 / (1 - 0.9**(step + k)) for k in range(4)]     # each parameter at its own step
        bc2 = [(1 - 0.999**(step + k)) ** 0.5 for k in range(4)]
        backend.adam_(*a, sizes, bc2, 0.9, 0.999, 1e-8)
        numpy_only(backend.adam_, *b, sizes, bc2, 0.9, 0.999, 1e-8)
    for x, y in zip([t for lst in a if lst for t in lst], [t for lst in b if lst for t in lst]):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == dtype


@needs_native
def test_adam_refuses_bad_lists_before_writing():
    p, g, m, v, _ = _adam_problem(np.float32, False)
    before = [x.copy() for x in p]
    with pytest.raises(TypeError, match="one float per parameter"):
        backend.native.adam(p, g, m, v, None, [0.1], [1.0] * 4, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match="differ in length"):
        backend.native.adam(p, g[:2], m, v, None, [0.1] * 4, [1.0] * 4, 0.9, 0.999, 1e-8)
    for x, y in zip(p, before):
        np.testing.assert_array_equal(x, y)


@needs_native
def test_kernels_refuse_what_they_cannot_read():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="contiguous"):
        backend.native.relu_backward(x.T, x.T, np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match="do not match"):
        backend.native.relu_backward(x, x.astype(np.float64), np.empty_like(x))
    with pytest.raises(TypeError, match="do not match"):
        backend.native.softmax_xent_forward(x, np.zeros(3, np.int64), np.empty_like(x), np.empty(4, np.float32),
                                            None)
    with pytest.raises(TypeError, match="do not match"):   # a 0-d Σe or 2-d targets: refused, never read
        backend.native.softmax_xent_forward(x, np.zeros(4, np.int64), np.empty_like(x), np.ones((), np.float32), None)
    with pytest.raises(TypeError, match="do not match"):
        backend.native.softmax_xent_backward(x, np.ones(4, np.float32), np.zeros((4, 1), np.int64), 0.5,
                                             np.empty_like(x))
    with pytest.raises(TypeError, match="float32 or float64"):
        backend.native.softmax_xent_forward(x.astype(np.int32), np.zeros(4, np.int64), np.empty_like(x),
                                            np.empty(4, np.float32), None)


def _layouts(rng, dtype):
    """The same values in a row-major array, a transposed one, a batch-last one (as a convolution hands out)
    and a strided slice (not one block: NumPy's path)."""
    a = rng.standard_normal((4, 6, 5, 3)).astype(dtype)
    a.reshape(-1)[:4] = [np.nan, -0.0, 0.0, -np.inf]
    batch_last = np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    return {"C": a, "transposed": np.ascontiguousarray(a.T).T, "batch-last": batch_last,
            "strided": np.repeat(a, 2, axis=3)[..., ::2]}


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "transposed", "batch-last", "strided"])
def test_relu_forward_and_backward_in_every_layout(layout, dtype):
    x = _layouts(np.random.default_rng(1), dtype)[layout]
    g = _layouts(np.random.default_rng(2), dtype)[layout]
    y, y0 = backend.relu_forward(x), numpy_only(backend.relu_forward, x)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y0))   # max(−0, 0) is +0
    assert y.dtype == dtype and (layout == "strided" or y.strides == x.strides)
    dx, dx0 = backend.relu_backward(g, y), numpy_only(backend.relu_backward, g, y)
    np.testing.assert_array_equal(dx, dx0)
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(dx0))


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    given = None

if given is not None:

    @needs_native
    @settings(max_examples=60, deadline=None)
    @given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), order=st.randoms(use_true_random=False),
           dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
    def test_relu_kernels_on_any_shape_and_axis_order(shape, order, dtype, seed):
        """Any shape, its axes laid out in any order in memory: the native ReLU equals NumPy's, bit for bit."""
        rng = np.random.default_rng(seed)
        axes = list(range(len(shape)))
        order.shuffle(axes)

        def laid_out(a):
            return np.ascontiguousarray(a.transpose(axes)).transpose(np.argsort(axes))
        x = laid_out((rng.standard_normal(shape) * (rng.random(shape) > 0.2)).astype(dtype))
        g = laid_out(rng.standard_normal(shape).astype(dtype))
        y = backend.relu_forward(x)
        np.testing.assert_array_equal(y, numpy_only(backend.relu_forward, x))
        np.testing.assert_array_equal(backend.relu_backward(g, y), numpy_only(backend.relu_backward, g, y))

    @needs_native
    @settings(max_examples=60, deadline=None)
    @given(n=st.integers(1, 40), c=st.integers(1, 40), scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
           dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
    def test_softmax_cross_entropy_on_any_size_and_scale(n, c, scale, dtype, seed):
        rng = np.random.default_rng(seed)
        x = (rng.standard_normal((n, c)) * scale).astype(dtype)
        t = rng.integers(0, c, n)
        loss, e, sum_e = backend.softmax_cross_entropy(x, t, True)
        loss0, e0, sum_e0 = numpy_only(backend.softmax_cross_entropy, x, t, True)
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(e, e0, rtol=8 * eps, atol=8 * eps)
        np.testing.assert_allclose(loss, loss0, rtol=64 * eps, atol=64 * eps * (1 + np.abs(loss0).max()))
        s = dtype(1 / n)
        np.testing.assert_array_equal(backend.softmax_cross_entropy_backward(e, sum_e, t, s),
                                      numpy_only(backend.softmax_cross_entropy_backward, e, sum_e, t, s))


def test_a_module_built_from_other_source_is_set_aside_with_a_warning():
    import subprocess
    import sys

    code = ("import sys, types, warnings\n"
            "stale = types.ModuleType('deltagrad._native'); stale.KERNELS_VERSION = 0\n"
            "sys.modules['deltagrad._native'] = stale\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    import deltagrad.backend as b\n"
            "print(b.native is None, any('pip install -e .' in str(w.message) for w in caught))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
