"""The worked example of the lecture notes (seeds/001): a 2-2-1 tanh network, Euclidean loss, one SGD step.

W0 = [[1, -3], [0.2, 1]], W1 = [1, -1], x0 = [1, 0.1], y = 0.5, η = 0.2. The notes print 2-5 digits;
deltagrad must reproduce every printed number, once with raw tensors and once with the library's modules.
(The notes print dL/dW0 transposed and multiply dL/dW1 by −0.1186 where they mean dL/dx3 = −0.1869; the
figures they print for the updated weights are those of the correct gradients, which are checked here.)
"""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg

W0 = [[1.0, -3.0], [0.2, 1.0]]
W1 = [[1.0, -1.0]]
X0, Y = [1.0, 0.1], 0.5


def close(value, printed):
    """Equal to each printed figure at the precision it was printed with: the notes cut some figures off
    rather than round them (dL/dx1 = −0.118661… is printed −0.1186), so allow one unit in the last digit."""
    decimals = [len(repr(float(p)).split(".")[1]) for p in np.ravel(printed)]
    tol = 10.0 ** -np.array(decimals, dtype=float) + 1e-12
    diff = np.abs(np.asarray(value, dtype=np.float64).ravel() - np.ravel(printed))
    assert np.all(diff <= tol), f"{np.ravel(value)} does not round to the printed {printed}"


def test_forward_backward_and_step_with_raw_tensors():
    w0 = dg.tensor(np.array(W0), requires_grad=True)
    w1 = dg.tensor(np.array(W1), requires_grad=True)
    x0, y = dg.tensor(np.array(X0)), dg.tensor(np.array([Y]))

    x1 = w0 @ x0
    x1.retain_grad()
    x2 = dg.tanh(x1)
    x2.retain_grad()
    x3 = w1 @ x2
    x3.retain_grad()
    loss = 0.5 * ((x3 - y) ** 2).sum()
    loss.backward()

    close(x1.data, [0.7, 0.3])
    close(x2.data, [0.604, 0.291])
    close(x3.data, [0.313])
    close(loss.item(), 0.017)
    close(x3.grad.data, [-0.1869])                 # dL/dx3 = x3 − y
    close(x2.grad.data, [-0.1869, 0.1869])         # dL/dx2 = dL/dx3 · W1
    close(x1.grad.data, [-0.1186, 0.171])          # dL/dx1 = dL/dx2 · (1 − tanh²(x1))
    # weight gradient = backward signal × forward signal (PyTorch layout: out × in)
    close(w0.grad.data, [[-0.1186, -0.01186], [0.171, 0.0171]])
    close(w1.grad.data, [[-0.113, -0.054]])

    with dg.no_grad():
        w0 -= 0.2 * w0.grad
        w1 -= 0.2 * w1.grad
    close(w0.data, [[1.02, -3.0], [0.17, 1.0]])
    close(w1.data, [[1.02, -0.989]])


def test_same_step_with_modules_loss_and_optimizer():
    nn, optim = pytest.importorskip("deltagrad.nn"), pytest.importorskip("deltagrad.optim")
    net = nn.Sequential(nn.Linear(2, 2, bias=False, dtype=dg.float64), nn.Tanh(),
                        nn.Linear(2, 1, bias=False, dtype=dg.float64))
    net.load_state_dict({"0.weight": dg.tensor(np.array(W0)), "2.weight": dg.tensor(np.array(W1))})
    opt = optim.SGD(net.parameters(), lr=0.2)
    loss = nn.EuclideanLoss()(net(dg.tensor(np.array([X0]))), dg.tensor(np.array([[Y]])))
    close(loss.item(), 0.017)
    opt.zero_grad()
    loss.backward()
    opt.step()
    close(net[0].weight.data, [[1.02, -3.0], [0.17, 1.0]])
    close(net[2].weight.data, [[1.02, -0.989]])
