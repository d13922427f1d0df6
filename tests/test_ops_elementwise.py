"""Elementwise ops beyond the op table: ReLU's layout paths (kept zeros for row-major inputs, zeros_like
for other layouts and large arrays) give the same values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg


@pytest.mark.parametrize("make", [
    lambda a: a,                                  # row-major: kept zeros
    lambda a: a.T,                                # column-major view
    lambda a: a[:, ::2],                          # strided view
    lambda a: np.tile(a, (300, 300))[:1100, :1000],  # over 2**20 elements (not kept) and a view
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_layouts(make, dtype):
    a = make(np.random.default_rng(0).standard_normal((6, 8)).astype(dtype))
    x = dg.tensor(a, requires_grad=True)
    for _ in range(2):  # the second call uses the kept zeros
        y = dg.relu(x)
        np.testing.assert_array_equal(y.data, np.maximum(a, 0))
        assert y.dtype == dtype
    y.backward(dg.tensor(np.ones(a.shape, dtype)))
    np.testing.assert_array_equal(x.grad.data, (a > 0).astype(dtype))


def test_relu_kept_zeros_are_never_handed_out():
    y = dg.relu(dg.tensor(-np.ones((3, 3), np.float32)))
    y.data[0, 0] = 5.0  # the output is a fresh array even where every input was negative
    np.testing.assert_array_equal(dg.relu(dg.tensor(-np.ones((3, 3), np.float32))).data, 0)
