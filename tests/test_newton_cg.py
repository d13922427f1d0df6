"""deltagrad.optim.NewtonCG: Newton steps from Hessian-vector products and conjugate gradients.

On logistic regression it reaches a gradient norm of 1e-8 in a handful of steps where gradient descent needs
thousands; on a quadratic one step is the exact minimizer; damping, negative curvature, dtypes and errors.
"""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import optim

RNG = np.random.default_rng(7)
N, D = 200, 3
XN = RNG.standard_normal((N, D)) * np.array([1.0, 3.0, 0.3])
_P = 1 / (1 + np.exp(-(XN @ np.array([1.5, -0.7, 2.0]) + 0.5)))
YN = np.where(RNG.random(N) < _P, 1.0, -1.0)  # noisy labels: not separable, so a minimum exists


def logistic_loss(X, y, w, b):
    """mean log(1 + exp(−y (x·w + b))), from elementwise ops and sum(dim=...)."""
    z = (X * w).sum(dim=1) + b
    return dg.log(1 + dg.exp(-y * z)).mean()


def grad_norm(loss):
    return float(np.sqrt(sum((g.data ** 2).sum() for g in loss)))


def numpy_newton_solution():
    """The minimizer by textbook Newton with the explicit Hessian, in NumPy, for reference."""
    Xa = np.hstack([XN, np.ones((N, 1))])
    theta = np.zeros(D + 1)
    for _ in range(30):
        s = 1 / (1 + np.exp(YN * (Xa @ theta)))          # σ(−y z)
        g = -(Xa * (YN * s)[:, None]).mean(0)
        H = (Xa * (s * (1 - s))[:, None]).T @ Xa / N
        theta -= np.linalg.solve(H, g)
    return theta


def test_logistic_regression_newton_far_fewer_steps_than_gradient_descent():
    X, y = dg.tensor(XN), dg.tensor(YN)
    tol = 1e-8

    w, b = dg.tensor(np.zeros(D), requires_grad=True), dg.tensor(np.zeros(()), requires_grad=True)
    opt = optim.NewtonCG([w, b])
    newton_steps = 0
    while grad_norm(dg.autograd.grad(logistic_loss(X, y, w, b), [w, b])) > tol:
        assert newton_steps < 50, "Newton-CG did not converge"
        opt.step(lambda: logistic_loss(X, y, w, b))
        newton_steps += 1
    assert newton_steps <= 10
    assert opt.state[w]["n_iter"] == newton_steps and opt.state[w]["step_size"] == 1.0  # full Newton steps at the end

    w2, b2 = dg.tensor(np.zeros(D), requires_grad=True), dg.tensor(np.zeros(()), requires_grad=True)
    Xa = np.hstack([XN, np.ones((N, 1))])
    smoothness = 0.25 * np.linalg.eigvalsh(Xa.T @ Xa / N).max()  # the Hessian is at most this
    gd = optim.SGD([w2, b2], lr=1 / smoothness)  # the largest safe constant step
    gd_steps = 0
    while True:
        gd.zero_grad()
        logistic_loss(X, y, w2, b2).backward()
        if grad_norm([w2.grad, b2.grad]) <= tol or gd_steps == 20000:
            break
        gd.step()
        gd_steps += 1
    assert 1000 < gd_steps < 20000
    assert gd_steps > 100 * newton_steps

    ref = numpy_newton_solution()
    np.testing.assert_allclose(np.append(w.data, b.data), ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.append(w2.data, b2.data), ref, rtol=1e-6, atol=1e-7)


def test_logistic_regression_with_matmul():
    if not hasattr(dg, "matmul"):
        pytest.skip("matmul is not available yet")
    X, y = dg.tensor(XN), dg.tensor(YN)
    w, b = dg.tensor(np.zeros(D), requires_grad=True), dg.tensor(np.zeros(()), requires_grad=True)
    opt = optim.NewtonCG([w, b])
    for _ in range(8):
        opt.step(lambda: dg.log(1 + dg.exp(-y * (X @ w + b))).mean())
    np.testing.assert_allclose(np.append(w.data, b.data), numpy_newton_solution(), rtol=1e-9, atol=1e-10)


def quadratic(A, c):
    """J(w) = ½ wᵀAw − cᵀw, written with elementwise ops; its gradient is Aw − c, its Hessian A."""
    A_t, c_t = dg.tensor(A), dg.tensor(c)
    n = len(c)
    return lambda w: 0.5 * (w * (w.reshape(1, n) * A_t).sum(dim=1)).sum() - (c_t * w).sum()


def spd(n, rng):
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    return Q @ np.diag(np.geomspace(1, 100, n)) @ Q.T


def test_one_step_minimizes_a_quadratic():
    rng = np.random.default_rng(0)
    A, c = spd(6, rng), rng.standard_normal(6)
    J = quadratic(A, c)
    w = dg.tensor(rng.standard_normal(6), requires_grad=True)
    opt = optim.NewtonCG([w], max_cg_iter=20, cg_tol=1e-13)
    opt.step(lambda: J(w))
    np.testing.assert_allclose(w.data, np.linalg.solve(A, c), rtol=1e-10, atol=1e-12)
    assert opt.state[w]["cg_iters"] <= 8  # CG needs at most n iterations (n = 6), plus rounding


def test_damping_solves_the_shifted_system():
    rng = np.random.default_rng(1)
    A, c = spd(5, rng), rng.standard_normal(5)
    J = quadratic(A, c)
    w0 = rng.standard_normal(5)
    w = dg.tensor(w0.copy(), requires_grad=True)
    opt = optim.NewtonCG([w], damping=10.0, line_search=None, cg_tol=1e-13, max_cg_iter=30)
    opt.step(lambda: J(w))
    g = A @ w0 - c
    np.testing.assert_allclose(w.data, w0 - np.linalg.solve(A + 10.0 * np.eye(5), g), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.grad.data, g, rtol=1e-12)  # .grad holds ∇J where the step started


def test_negative_curvature_falls_back_to_a_descent_step():
    w = dg.tensor(np.array([0.1, -0.2, 0.15]), requires_grad=True)

    def J():
        return (w ** 4).sum() - 2 * (w ** 2).sum()  # concave near 0: H = 12w² − 4 < 0

    before = float(J())
    opt = optim.NewtonCG([w])
    opt.step(J)
    assert opt.state[w]["cg_iters"] == 1
    assert float(J()) < before
    for _ in range(30):
        opt.step(J)
    np.testing.assert_allclose(np.abs(w.data), 1.0, rtol=1e-10)  # the minima are at ±1


def test_float32_stays_float32():
    X, y = dg.tensor(XN.astype(np.float32)), dg.tensor(YN.astype(np.float32))
    w, b = dg.tensor(np.zeros(D, np.float32), requires_grad=True), dg.tensor(np.zeros((), np.float32),
                                                                           requires_grad=True)
    opt = optim.NewtonCG([w, b])
    for _ in range(6):
        opt.step(lambda: logistic_loss(X, y, w, b))
    assert w.dtype == np.float32 and b.dtype == np.float32 and w.grad.dtype == np.float32
    np.testing.assert_allclose(np.append(w.data, b.data), numpy_newton_solution(), rtol=1e-4, atol=1e-5)


def test_errors_and_validation():
    w = dg.tensor(np.ones(2), requires_grad=True)
    opt = optim.NewtonCG([w])
    with pytest.raises(RuntimeError, match="closure"):
        opt.step(None)
    with pytest.raises(RuntimeError, match="no graph"):
        opt.step(lambda: dg.tensor(1.0))
    with pytest.raises(RuntimeError, match="one-element"):
        opt.step(lambda: w * w)
    with pytest.raises(ValueError, match="damping"):
        optim.NewtonCG([w], damping=-1)
    with pytest.raises(ValueError, match="max_cg_iter"):
        optim.NewtonCG([w], max_cg_iter=0)
    with pytest.raises(ValueError, match="line_search"):
        optim.NewtonCG([w], line_search="wolfe")
    with pytest.raises(ValueError, match="require grad"):
        optim.NewtonCG([dg.tensor(np.ones(2))])


def test_state_dict_round_trip():
    rng = np.random.default_rng(2)
    A, c = spd(4, rng), rng.standard_normal(4)
    J = quadratic(A, c)
    w = dg.tensor(np.ones(4), requires_grad=True)
    opt = optim.NewtonCG([w], max_cg_iter=2)
    opt.step(lambda: J(w))
    arrays, meta = optim.optimizer_state_to_flat(opt.state_dict())
    assert not arrays and meta["param_groups"][0]["max_cg_iter"] == 2
    opt2 = optim.NewtonCG([w])
    opt2.load_state_dict(optim.optimizer_state_from_flat(arrays, meta))
    assert opt2.param_groups[0]["max_cg_iter"] == 2 and opt2.state[w]["n_iter"] == 1
