"""The backend's own kernels against NumPy: scatter_add against numpy.add.at (the same sums for every index form
the ops use, repeated indices accumulating, in the target's dtype, through both its flat-position path and the
plain one), axpby against NumPy's passes, sliding windows, the allocator setting."""

from __future__ import annotations

import numpy as np
import pytest

from deltagrad import backend

RNG = np.random.default_rng(0)


def _forms(shape):
    """(name, index) pairs for a target of ``shape`` (2-D or 3-D), with many repeated positions."""
    n0, n1 = shape[0], shape[1]
    r = np.random.default_rng(len(shape))
    forms = [
        ("axis 0", r.integers(0, n0, 3 * n0)),
        ("axis 0 in a tuple with ...", (r.integers(-n0, n0, 2 * n0), Ellipsis)),
        ("axis 1 after a slice", (slice(None), r.integers(0, n1, 2 * n1))),
        ("axis 1 after a strided slice", (slice(None, None, -2), r.integers(-n1, n1, (3, n1)))),
        ("last axis after ...", (Ellipsis, r.integers(0, shape[-1], 2 * shape[-1]))),
        ("2-D index on axis 1", (slice(1, None), r.integers(0, n1, (n1, 3)))),
        ("arrays on every axis (gather)", tuple(r.integers(0, n, [2 * n if j == k else 1 for j in range(len(shape))])
                                                for k, n in enumerate(shape))),
        ("int beside an array", (1, r.integers(0, n1, 4 * n1))),
        ("0-d array beside an array", (np.array(n0 - 1), r.integers(0, n1, 4 * n1))),
        ("None in front", (None, r.integers(0, n0, 2 * n0))),
        ("empty index", (np.zeros(0, np.int64), slice(None))),
        ("int32 index", r.integers(0, n0, 2 * n0).astype(np.int32)),
    ]
    if len(shape) == 3:
        forms += [
            ("arrays apart: their dims go first", (r.integers(0, n0, (4, 1)), slice(None), r.integers(0, shape[2], 5))),
            ("arrays apart after a slice", (slice(None), r.integers(0, n1, (5, 1)), None, r.integers(0, shape[2], 4))),
            ("arrays apart, result shape as if adjacent", (slice(None), r.integers(0, n1, n0), None,
                                                           r.integers(0, shape[2], n0))),
            ("int and array apart (... between)", (slice(None), 2, Ellipsis, r.integers(0, shape[2], 7))),
            ("arrays adjacent after a slice", (slice(None), r.integers(0, n1, 6), r.integers(0, shape[2], 6))),
            ("mask positions (nonzero)", (r.random(shape[:2]) > 0.5).nonzero()),
            ("NumPy int beside an array", (slice(None), r.integers(-n1, n1, 4 * n1), np.int64(-1))),
        ]
    return forms


CASES = [(shape, name, index) for shape in [(40, 50), (12, 9, 20)] for name, index in _forms(shape)]


@pytest.fixture(params=["flat path", "plain numpy.add.at"])
def path(request, monkeypatch):
    monkeypatch.setattr(backend, "_FLAT_MIN", 0 if request.param == "flat path" else 10 ** 12)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,name,index", CASES, ids=[f"{len(s)}-D {n}" for s, n, _ in CASES])
def test_scatter_add_matches_numpy_add_at(shape, name, index, dtype, path):
    result_shape = np.zeros(shape)[index].shape
    start = RNG.standard_normal(shape).astype(dtype)
    for exact, values in ((True, RNG.integers(-4, 5, result_shape).astype(dtype)),  # sums exact in any order
                          (False, RNG.standard_normal(result_shape).astype(dtype))):
        expected, ours = start.copy(), np.round(start) if exact else start.copy()
        if exact:
            expected = ours.copy()
        np.add.at(expected, index, values)
        backend.scatter_add(ours, index, values)
        assert ours.dtype == dtype
        if exact:
            np.testing.assert_array_equal(ours, expected)
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,name,index", CASES, ids=[f"{len(s)}-D {n}" for s, n, _ in CASES])
def test_flat_positions_are_those_numpy_indexing_picks(shape, name, index):
    positions = np.arange(np.prod(shape)).reshape(shape)[index]
    np.testing.assert_array_equal(backend._flat_positions(shape, index), positions, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_dimensional_target(dtype):
    index = RNG.integers(-300, 300, 5000)
    values = RNG.standard_normal(5000).astype(dtype)
    expected, ours = np.zeros(300, dtype), np.zeros(300, dtype)
    np.add.at(expected, index, values)
    backend.scatter_add(ours, index, values)
    np.testing.assert_array_equal(ours, expected)


def test_float32_accumulates_in_float32_as_numpy_add_at(path):
    # 1e8 + 1 == 1e8 in float32: summed one by one in float32 the eight ones vanish (float64 would keep them)
    values = np.ones((2, 2000), np.float32)
    values[:, 0] = 1e8
    index = (slice(None), np.zeros(2000, np.int64))
    expected, ours = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)
    np.add.at(expected, index, values)
    backend.scatter_add(ours, index, values)
    assert ours.dtype == np.float32 and ours[0, 0] == expected[0, 0] == np.float32(1e8)
    np.testing.assert_array_equal(ours, expected)


def test_values_broadcast_and_a_non_contiguous_target(path):
    index = (RNG.integers(0, 30, 2000), slice(None))
    row = RNG.standard_normal(4)  # broadcast against the (2000, 4) result
    expected, ours = np.zeros((30, 4)), np.zeros((30, 4))
    np.add.at(expected, index, row)
    backend.scatter_add(ours, index, row)
    np.testing.assert_allclose(ours, expected, rtol=1e-13)
    values = RNG.standard_normal((2000, 4))
    expected = np.zeros((30, 4))
    np.add.at(expected, index, values)
    base = np.zeros((4, 30))
    backend.scatter_add(base.T, index, values)  # a view that is not C-contiguous: written through
    np.testing.assert_allclose(base.T, expected, rtol=1e-13)


def test_large_indices_take_the_flat_path(monkeypatch):
    seen = []
    real = backend._flat_positions
    monkeypatch.setattr(backend, "_flat_positions", lambda shape, index: seen.append(shape) or real(shape, index))
    target = np.zeros((64, 100), np.float32)
    backend.scatter_add(target, (np.arange(64)[:, None], RNG.integers(0, 100, (64, 100))), np.ones((64, 100),
                                                                                                    np.float32))
    assert seen == [(64, 100)] and target.sum() == 6400


@pytest.mark.parametrize("index,values,error", [
    ((np.array([0, 40]), slice(None)), np.ones((2, 50)), IndexError),
    ((slice(None), np.array([-51])), np.ones((40, 1)), IndexError),
    ((np.array([0, 1]), np.array([0, 1, 2])), np.ones(3), IndexError),  # arrays that do not broadcast
    ((np.arange(40), slice(None)), np.ones((40, 3)), ValueError),  # values that do not broadcast
])
def test_errors_are_numpys(index, values, error, path):
    with pytest.raises(error):
        np.add.at(np.zeros((40, 50)), index, values)
    target = np.zeros((40, 50))
    with pytest.raises(error):
        backend.scatter_add(target, index, values)
    assert not target.any()


def test_allocator_keeps_freed_memory_unless_turned_off():
    import os
    import platform
    import subprocess
    import sys

    from deltagrad import backend

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert backend.allocator_tuned
    code = "import deltagrad.backend as b; print(b.allocator_tuned)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "DELTAGRAD_KEEP_FREED_MEMORY": "0"})
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("shape, window, axes", [((2, 3, 8, 9), (3, 2), (2, 3)), ((4, 5, 7), (3,), (2,)),
                                                 ((2, 3, 4, 5, 6), (2, 2, 2), (2, 3, 4)), ((3, 4), (4,), (1,))])
def test_sliding_windows_equal_numpys_view(shape, window, axes):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got = backend.sliding_windows(x, window, axes)
    np.testing.assert_array_equal(got, np.lib.stride_tricks.sliding_window_view(x, window, axis=axes))
    assert not got.flags.writeable
    with pytest.raises(ValueError, match="does not fit"):
        backend.sliding_windows(x, (shape[axes[0]] + 1,), axes[:1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, backend.BLAS_AXPBY_MIN, 3 * backend.BLAS_AXPBY_MIN + 5])
@pytest.mark.parametrize("beta", [0.9, 1.0])
def test_axpby_is_y_times_beta_plus_alpha_x_in_place(n, dtype, beta):
    r = np.random.default_rng(n)
    x, y = r.standard_normal(n).astype(dtype), r.standard_normal(n).astype(dtype)
    alpha, beta = dtype(-0.05), dtype(beta)
    want = y * beta + alpha * x
    target = y
    backend.axpby(alpha, x, beta, y)
    assert y is target and y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=2 * np.finfo(dtype).eps, atol=2 * np.finfo(dtype).eps)


def test_axpby_takes_blas_for_large_arrays_where_numpys_openblas_is_found():
    import glob
    import os

    here = os.path.dirname(np.__file__)
    shipped = glob.glob(os.path.join(here, os.pardir, "numpy.libs", "*openblas64*")) + \
        glob.glob(os.path.join(here, ".dylibs", "*openblas64*"))
    if not shipped or os.environ.get("DELTAGRAD_BLAS_AXPBY") == "0":
        pytest.skip("this NumPy does not ship its own OpenBLAS")
    want = {(name, dtype) for name in ("axpby", "axpy") for dtype in (backend.float32, backend.float64)}
    assert set(backend._blas) == want


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.9), (-0.1, 0.0), (-0.1, 1.0)])
def test_axpby_zero_factors_keep_nan_as_numpy_does(alpha, beta):
    n = 2 * backend.BLAS_AXPBY_MIN
    x, y = np.ones(n, np.float32), np.ones(n, np.float32)
    x[3] = y[5] = np.nan
    backend.axpby(np.float32(alpha), x, np.float32(beta), y)
    want = np.ones(n, np.float32) * np.float32(beta) + np.float32(alpha) * x
    want[5] = np.nan  # 0·NaN is NaN, and a NaN in y stays
    np.testing.assert_array_equal(y, want)


def test_axpby_on_non_contiguous_arrays_uses_numpy():
    n = 4 * backend.BLAS_AXPBY_MIN
    x, base = np.arange(n, dtype=np.float32), np.ones(2 * n, np.float32)
    y = base[::2]
    backend.axpby(np.float32(2), x, np.float32(3), y)
    np.testing.assert_array_equal(y, 3 + 2 * x)
    assert (base[1::2] == 1).all()


def test_blas_axpby_can_be_turned_off():
    import os
    import subprocess
    import sys

    code = "import deltagrad.backend as b; print(len(b._blas))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "DELTAGRAD_BLAS_AXPBY": "0"})
    assert out.stdout.strip() == "0"
