"""deltagrad.nn.init: gains and fans as PyTorch's, empirical variances as the formulas, in place, dtype kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.nn import Parameter, init


def big(dtype="float32"):
    return dg.zeros(1000, 1000, dtype=dtype)


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-15), name
    for slope in [0, 0.2, 1, math.sqrt(5)]:
        assert init.calculate_gain("leaky_relu", slope) == pytest.approx(
            torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-15)


def test_calculate_gain_values_and_errors():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.0) == math.sqrt(2)
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "0.1")


@pytest.mark.parametrize("shape", [(3, 4), (8, 3, 5), (6, 3, 5, 5), (2, 7, 1, 3, 2)])
def test_fans_match_torch(shape):
    torch = pytest.importorskip("torch")
    ours = init._calculate_fan_in_and_fan_out(dg.zeros(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))


def test_fans_conv_receptive_field_and_errors():
    assert init._calculate_fan_in_and_fan_out(dg.zeros(6, 3, 5, 5)) == (75, 150)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(dg.zeros(5))
    with pytest.raises(ValueError, match="mode 'fan_avg'"):
        init.kaiming_normal_(dg.zeros(3, 3), mode="fan_avg")


def _var_close(t, expected):
    v = t.data.astype(np.float64).var()
    assert abs(v / expected - 1) < 0.02, (v, expected)
    assert abs(t.data.astype(np.float64).mean()) < 0.01 * math.sqrt(expected) * 10


def test_xavier_variances():
    # 1000 x 1000: fan_in = fan_out = 1000, Var = gain² · 2 / 2000
    _var_close(init.xavier_uniform_(big()), 2 / 2000)
    _var_close(init.xavier_normal_(big()), 2 / 2000)
    _var_close(init.xavier_uniform_(big(), gain=init.calculate_gain("tanh")), (5 / 3) ** 2 * 2 / 2000)
    t = dg.zeros(500, 2000)
    _var_close(init.xavier_normal_(t, gain=2.0), 4 * 2 / 2500)


def test_kaiming_variances():
    _var_close(init.kaiming_normal_(big(), nonlinearity="relu"), 2 / 1000)
    _var_close(init.kaiming_uniform_(big(), nonlinearity="relu"), 2 / 1000)
    # the Linear default: a = √5 gives gain² = 2/6 = 1/3, Var = 1/(3 fan_in), bound 1/√fan_in
    w = init.kaiming_uniform_(dg.zeros(400, 2500), a=math.sqrt(5))
    _var_close(w, 1 / (3 * 2500))
    assert np.abs(w.data).max() <= 1 / math.sqrt(2500)
    assert np.abs(w.data).max() > 0.99 / math.sqrt(2500)
    # fan_out mode on a conv weight: fan_out = 40 · 25
    _var_close(init.kaiming_normal_(dg.zeros(40, 1000, 5, 5), mode="fan_out", nonlinearity="relu"), 2 / 1000)
    _var_close(init.kaiming_normal_(big(), a=0.2), 2 / (1 + 0.04) / 1000)


def test_uniform_normal_constant():
    u = init.uniform_(big(), -2.0, 4.0)
    assert u.data.min() >= -2 and u.data.max() <= 4
    _var_close(init.uniform_(big(), -0.5, 0.5), 1 / 12)
    n = init.normal_(big(), mean=3.0, std=0.5)
    assert abs(n.data.mean() - 3) < 0.005 and abs(n.data.std() / 0.5 - 1) < 0.01
    c = init.constant_(dg.zeros(2, 3), 0.25)
    assert np.all(c.data == 0.25)
    assert np.all(init.ones_(dg.zeros(4)).data == 1)
    assert np.all(init.zeros_(dg.ones(4)).data == 0)
    assert np.all(init.constant_(dg.zeros(3, dtype="int64"), 7).data == 7)
    np.testing.assert_array_equal(init.eye_(dg.zeros(2, 3)).data, np.eye(2, 3))


def test_trunc_normal_and_orthogonal():
    t = init.trunc_normal_(big(), std=1.0, a=-1.0, b=1.5)
    assert t.data.min() >= -1.0 and t.data.max() <= 1.5
    with pytest.raises(ValueError, match="too far"):
        init.trunc_normal_(dg.zeros(3), a=10, b=11)
    q = init.orthogonal_(dg.zeros(4, 6, dtype="float64"))
    np.testing.assert_allclose(q.data @ q.data.T, np.eye(4), atol=1e-12)
    q = init.orthogonal_(dg.zeros(6, 2, 2, dtype="float64"), gain=2.0)
    m = q.data.reshape(6, 4)
    np.testing.assert_allclose(m.T @ m, 4 * np.eye(4), atol=1e-12)


def test_in_place_keeps_dtype_and_identity_on_parameters():
    for dtype in ("float32", "float64"):
        p = Parameter(dg.zeros(30, 20, dtype=dtype))
        version = p._version[0]
        for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
                   init.normal_, init.uniform_, init.orthogonal_, init.trunc_normal_):
            out = fn(p)  # grad mode is on and p requires grad: writes are not recorded, so this is allowed
            assert out is p and p.dtype == np.dtype(dtype) and p.is_leaf and p.requires_grad
        assert p._version[0] > version
        assert np.std(p.data) > 0


def test_generators_and_seed():
    a = init.normal_(dg.zeros(5), generator=np.random.default_rng(3)).data.copy()
    b = init.normal_(dg.zeros(5), generator=np.random.default_rng(3)).data.copy()
    np.testing.assert_array_equal(a, b)
    dg.manual_seed(11)
    c = init.xavier_uniform_(dg.zeros(4, 4)).data.copy()
    dg.manual_seed(11)
    d = init.xavier_uniform_(dg.zeros(4, 4)).data.copy()
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(c, init.xavier_uniform_(dg.zeros(4, 4)).data)


def test_errors_and_empty():
    with pytest.raises(TypeError, match="deltagrad Tensor"):
        init.normal_(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point"):
        init.uniform_(dg.zeros(3, dtype="int64"))
    empty = dg.zeros(0, 3)
    assert init.kaiming_uniform_(empty) is empty
