"""deltagrad.capture: a recorded training step replays to exactly the eager results."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.autograd import CaptureError, replayed


class PlainSGD:
    """A minimal optimizer whose step is marked for replay."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    @replayed
    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @replayed
    def step(self):
        for p in self.params:
            p.data -= self.lr * p.grad.data


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    w = dg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = dg.tensor(rng.standard_normal((4,)), requires_grad=True)
    xs = [rng.standard_normal((5, 3)) for _ in range(6)]
    ys = [rng.standard_normal((5, 4)) for _ in range(6)]
    return w, b, xs, ys


def train(step_fn, xs, ys):
    losses = []
    for x, y in zip(xs, ys):
        losses.append(step_fn(dg.tensor(x), dg.tensor(y)).item())
    return losses


def make_step(w, b, opt):
    def step(x, y):
        opt.zero_grad()
        h = (x.reshape(5, 3, 1) * w).sum(dim=1) + b      # x @ w + b, from elementwise ops
        loss = ((h.tanh() - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    return step


def test_replay_matches_eager_bit_for_bit():
    w1, b1, xs, ys = make_problem()
    eager = train(make_step(w1, b1, PlainSGD([w1, b1], 0.1)), xs, ys)
    w2, b2, _, _ = make_problem()
    captured = dg.capture(make_step(w2, b2, PlainSGD([w2, b2], 0.1)))
    replayed_losses = train(captured, xs, ys)
    assert replayed_losses == eager
    np.testing.assert_array_equal(w1.data, w2.data)
    np.testing.assert_array_equal(b1.data, b2.data)
    assert len(captured.tapes) == 1


def test_returned_values_have_no_graph_and_are_fresh():
    w, b, xs, ys = make_problem()
    captured = dg.capture(make_step(w, b, PlainSGD([w, b], 0.1)))
    first = captured(dg.tensor(xs[0]), dg.tensor(ys[0]))
    second = captured(dg.tensor(xs[1]), dg.tensor(ys[1]))
    assert not first.requires_grad and not second.requires_grad
    assert first.item() != second.item()


def test_new_input_shape_is_captured_anew():
    rng = np.random.default_rng(1)
    w = dg.tensor(rng.standard_normal(3), requires_grad=True)
    opt = PlainSGD([w], 0.1)

    def step(x):
        opt.zero_grad()
        loss = (x * w).sum()
        loss.backward()
        opt.step()
        return loss

    captured = dg.capture(step)
    captured(dg.tensor(np.ones((2, 3))))
    captured(dg.tensor(np.ones((2, 3))))
    captured(dg.tensor(np.ones((4, 3))))
    assert len(captured.tapes) == 2
    np.testing.assert_allclose(w.data, rng.__class__(np.random.PCG64(1)).standard_normal(3) - 0.1 * 8)


def test_hooks_are_refused():
    w = dg.tensor(np.ones(3), requires_grad=True)
    w.register_hook(lambda g: g * 2)

    def step(x):
        loss = (x * w).sum()
        loss.backward()
        return loss

    with pytest.raises(CaptureError, match="hooks"):
        dg.capture(step)(dg.tensor(np.ones(3)))


def test_capture_cannot_nest():
    inner = dg.capture(lambda x: x * 2)
    outer = dg.capture(lambda x: inner(x))
    with pytest.raises(CaptureError, match="nested"):
        outer(dg.tensor(np.ones(2)))


def test_captured_training_of_real_layers_equals_eager_exactly():
    """An MLP with dropout and batch norm, SGD with momentum: replay draws new dropout masks and updates the
    running statistics exactly as eager steps do."""
    nn, optim = dg.nn, dg.optim

    def run(captured: bool):
        dg.manual_seed(3)
        model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        lossf = nn.CrossEntropyLoss()

        def step(x, y):
            opt.zero_grad()
            loss = lossf(model(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = dg.capture(step) if captured else step
        rng = np.random.default_rng(0)
        losses = [fn(dg.tensor(rng.standard_normal((8, 6)).astype(np.float32)),
                     dg.tensor(rng.integers(0, 3, 8))).item() for _ in range(12)]
        return losses, model.state_dict()

    eager_losses, eager_state = run(False)
    replay_losses, replay_state = run(True)
    assert replay_losses == eager_losses
    for k in eager_state:
        np.testing.assert_array_equal(replay_state[k].data, eager_state[k].data, err_msg=k)


def test_in_place_state_updates_are_replayed_and_step_values_refused():
    counter = dg.zeros(1)
    w = dg.tensor(np.ones(2), requires_grad=True)

    def counting_step(x):
        with dg.no_grad():
            counter.add_(1)
        return (x * w).sum()

    captured = dg.capture(counting_step)
    for _ in range(3):
        captured(dg.tensor(np.ones(2)))
    assert counter.item() == 3

    def leaking_step(x):
        h = x * w
        with dg.no_grad():
            counter.add_(h.detach().sum())
        return h

    with pytest.raises(CaptureError, match="computed inside the captured step"):
        dg.capture(leaking_step)(dg.tensor(np.ones(2)))

    def assigning_step(x):
        buf = dg.zeros(2)
        buf[0] = 1.0
        return x * buf

    with pytest.raises(CaptureError, match="item assignment"):
        dg.capture(assigning_step)(dg.tensor(np.ones(2)))


def test_detached_values_follow_the_replayed_step():
    w = dg.tensor(np.array([2.0]), requires_grad=True)

    def step(x):
        target = (x * 3).detach()
        return ((x * w - target) ** 2).sum()

    captured = dg.capture(step)
    captured(dg.tensor(np.array([1.0])))
    np.testing.assert_allclose(captured(dg.tensor(np.array([5.0]))).item(), (5 * 2 - 15) ** 2)


def test_module_zero_grad_is_replayed():
    model = dg.nn.Linear(3, 1)

    def step(x):
        model.zero_grad()
        loss = model(x).sum()
        loss.backward()
        return loss

    captured = dg.capture(step)
    for _ in range(3):
        captured(dg.ones(2, 3))
    np.testing.assert_allclose(model.bias.grad.data, [2.0])  # zeroed each step, not accumulated


def test_comparisons_and_argmax_inside_a_step_are_replayed():
    model = dg.nn.Linear(4, 3)

    def step(x, y):
        logits = model(x)
        return (logits.argmax(1) == y).float().mean(), (logits > 0).sum()

    captured = dg.capture(step)
    rng = np.random.default_rng(5)
    for _ in range(4):
        x, y = dg.tensor(rng.standard_normal((6, 4)).astype(np.float32)), dg.tensor(rng.integers(0, 3, 6))
        acc, positive = captured(x, y)
        eager_acc, eager_positive = step(x, y)
        assert acc.item() == eager_acc.item() and positive.item() == eager_positive.item()


def test_output_structures_inputs_and_live_tensors():
    w = dg.tensor(np.array([2.0]), requires_grad=True)

    def step(x):
        y = x * w
        return {"y": y, "pair": (x, w), "list": [y.detach() * 2]}

    captured = dg.capture(step)
    captured(dg.tensor(np.array([1.0])))
    x = dg.tensor(np.array([3.0]))
    out = captured(x)
    np.testing.assert_allclose(out["y"].data, [6.0])
    assert out["pair"][0] is x and out["pair"][1] is w
    np.testing.assert_allclose(out["list"][0].data, [12.0])
    tape, _ = next(iter(captured.tapes.values()))
    assert not tape.keep and not tape.slot_of  # nothing of the capture run is kept alive


class ScaleFirst(dg.autograd.Function):
    """y = 2·a + 0·b, whose backward returns a single array for its two inputs (the engine allows it)."""

    def forward(ctx, a, b):
        return 2 * a

    def backward(ctx, g):
        return 2 * g


def test_replay_follows_the_engine_on_reused_broadcast_and_short_gradients():
    """x used twice (gradients summed), a bias broadcast over rows (summed back), a backward returning fewer
    gradients than inputs: the generated replay gives the eager gradients."""
    rng = np.random.default_rng(5)

    def run(captured: bool):
        w = dg.tensor(rng.standard_normal((3, 3)), requires_grad=True)
        b = dg.tensor(rng.standard_normal(3), requires_grad=True)
        opt = PlainSGD([w, b], 0.05)

        def step(x):
            opt.zero_grad()
            h = x @ w + b
            loss = (ScaleFirst.apply(h * h, b) + h).sum()
            loss.backward()
            opt.step()
            return loss

        fn = dg.capture(step) if captured else step
        xs = [dg.tensor(np.full((4, 3), k / 7.0)) for k in range(5)]
        return [(fn(x).data.copy(), w.data.copy(), b.data.copy()) for x in xs]

    state = rng.bit_generator.state
    eager = run(False)
    rng.bit_generator.state = state
    replay = run(True)
    for e, r in zip(eager, replay):
        for a, b in zip(e, r):
            np.testing.assert_array_equal(a, b)


def test_the_replayed_code_can_be_read():
    w, b, xs, ys = make_problem()
    captured = dg.capture(make_step(w, b, PlainSGD([w, b], 0.1)))
    assert captured.code == ""
    train(captured, xs[:2], ys[:2])
    code = captured.code
    assert code.startswith("def replay(inputs):")
    for line in ("# Tanh", "# backward", "# PlainSGD.step", "# PlainSGD.zero_grad", ".backward(g"):
        assert line in code, line
    compile(code, "<test>", "exec")


def test_a_step_of_a_thousand_ops_replays_as_eager():
    w = dg.tensor(np.linspace(0.5, 1.5, 3), requires_grad=True)
    opt = PlainSGD([w], 1e-3)

    def step(x):
        opt.zero_grad()
        h = x
        for _ in range(500):
            h = (h * w).tanh() + x
        loss = h.sum()
        loss.backward()
        opt.step()
        return loss

    xs = [dg.tensor(np.full(3, k / 5.0)) for k in range(4)]
    eager = [step(x).item() for x in xs]
    w.data[...] = np.linspace(0.5, 1.5, 3)
    captured = dg.capture(step)
    assert [captured(x).item() for x in xs] == eager
    assert captured.code.count("\n") > 5000
