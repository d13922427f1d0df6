"""Elementwise ops beyond the op table: ReLU's layout paths (kept zeros for row-major inputs, zeros_like
for other layouts and large arrays) give the same values and gradients; pow's gradients against torch on a
grid of bases and exponents with zeros, negative bases, integer exponents and infinities."""

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


BASES = [0.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, np.inf, -np.inf]
EXPONENTS = [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, -0.5, 2.5, np.inf, -np.inf]


def _pow_like_torch(base, exponent):
    """base ** exponent in deltagrad and torch (arrays become float64 tensors requiring grad, ints not):
    the same values and the same gradients, NaN and ±inf included."""
    torch = pytest.importorskip("torch")

    def pair(v):
        if not isinstance(v, np.ndarray):
            return v, v
        grad = v.dtype.kind == "f"
        return dg.tensor(v, requires_grad=grad), torch.tensor(v, requires_grad=grad)

    (a, ta), (b, tb) = pair(base), pair(exponent)
    y, ty = a ** b, ta ** tb
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    for ours, theirs in ((a, ta), (b, tb)):
        if isinstance(ours, dg.Tensor) and ours.requires_grad:
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


def test_pow_gradients_like_torch_on_a_grid():
    a, b = np.meshgrid(np.array(BASES), np.array(EXPONENTS))
    _pow_like_torch(a, b)                                              # tensor ** tensor, every pair


@pytest.mark.parametrize("base", [0.0, 0, 2.0, -2.0, 1.0])
def test_pow_of_a_number_to_a_tensor_exponent_like_torch(base):
    _pow_like_torch(base, np.array(EXPONENTS))                         # 0 ** t: d/dt = 0 where t ≥ 0, not NaN


@pytest.mark.parametrize("exponent", EXPONENTS + [0, 1, 2, 3, -1, -2])
def test_pow_of_a_tensor_to_a_number_like_torch(exponent):
    _pow_like_torch(np.array(BASES), exponent)


def test_pow_of_negative_bases_to_integer_tensor_exponents_like_torch():
    a, b = np.meshgrid(np.array(BASES), np.arange(-3, 4))
    _pow_like_torch(a, b)                                              # an int64 exponent: no gradient of its own
