"""The ledger: forward signals x(l), backward signals dL/dx(l) and parameter gradients of every layer, against
torch's hooks on the same weights (float64); the notes' identity dL/dW = backward × forward for each layer with a
rule; the finite-difference check; and the summary the command prints."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import nn
from deltagrad.explain import ExplainError, Ledger
from deltagrad.explain.ledger_report import ledger_text, summarize


def mlp():
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 4), nn.Pointwise("tanh", 4),
                         nn.Linear(4, 3)).double()


def cnn():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(12, 3)).double()


def torch_copy(model):
    """The same network in torch, with the same weights (a Pointwise becomes tanh(x + b))."""
    torch = pytest.importorskip("torch")

    class TorchPointwise(torch.nn.Module):
        def __init__(self, b):
            super().__init__()
            self.bias = torch.nn.Parameter(b)

        def forward(self, x):
            return torch.tanh(x + self.bias)

    def layer(m):
        if isinstance(m, nn.Pointwise):
            return TorchPointwise(torch.tensor(m.bias.data.copy()))
        if isinstance(m, nn.Linear):
            t = torch.nn.Linear(m.in_features, m.out_features)
        elif isinstance(m, nn.Conv2d):
            t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding)
        elif isinstance(m, nn.BatchNorm2d):
            t = torch.nn.BatchNorm2d(m.num_features)
        elif isinstance(m, nn.MaxPool2d):
            t = torch.nn.MaxPool2d(2)
        else:
            t = {nn.Tanh: torch.nn.Tanh, nn.ReLU: torch.nn.ReLU, nn.Flatten: torch.nn.Flatten}[type(m)]()
        t.double().load_state_dict({k: torch.tensor(v.data.copy()) for k, v in m.state_dict().items()})
        return t

    layers = [layer(m) for m in model]
    return torch.nn.Sequential(*layers).double()


@pytest.mark.parametrize("make, shape", [(mlp, (6, 5)), (cnn, (4, 2, 4, 4))])
def test_signals_and_gradients_equal_torch_hooks(make, shape, rng):
    torch = pytest.importorskip("torch")
    model = make()
    tmodel = torch_copy(model)
    x, y = rng.standard_normal(shape), rng.integers(0, 3, shape[0])
    ledger = Ledger.record(model, x, y, nn.CrossEntropyLoss())

    seen = {}
    for i, m in enumerate(tmodel):
        m.register_forward_hook(lambda mod, a, out, i=i: seen.__setitem__(("x", i), (a[0].detach(), out.detach())))
        m.register_full_backward_hook(lambda mod, gi, go, i=i: seen.__setitem__(("g", i), go[0]))
    tx = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tmodel(tx), torch.tensor(y))
    tloss.backward()

    assert len(ledger) == len(model)
    assert ledger.loss == pytest.approx(tloss.item(), rel=1e-13)
    np.testing.assert_allclose(ledger.input_grad, tx.grad.numpy(), rtol=1e-10, atol=1e-15)
    for rec, tm in zip(ledger, tmodel):
        x_in, x_out = seen[("x", rec.index)]
        np.testing.assert_allclose(rec.input, x_in.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rec.output, x_out.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rec.output_grad, seen[("g", rec.index)].numpy(), rtol=1e-10, atol=1e-15)
        for name, p in tm.named_parameters():
            np.testing.assert_allclose(rec.grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert all(p.grad is None for p in model.parameters())  # autograd.grad: the model's .grad left alone


LAYERS = [
    ("linear on (N, T, in)", nn.Linear(4, 3), (2, 5, 4)),
    ("conv1d strided, dilated", nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2), (3, 2, 11)),
    ("conv2d grouped, circular", nn.Conv2d(4, 6, (3, 2), padding=1, groups=2, padding_mode="circular"), (2, 4, 5, 5)),
    ("conv2d same", nn.Conv2d(2, 3, 4, padding="same"), (2, 2, 6, 6)),
    ("conv3d", nn.Conv3d(2, 2, 2, stride=(1, 2, 1)), (2, 2, 3, 4, 3)),
    ("batchnorm1d", nn.BatchNorm1d(3), (6, 3)),
    ("batchnorm2d", nn.BatchNorm2d(3), (2, 3, 4, 4)),
    ("pointwise sigmoid", nn.Pointwise(dg.sigmoid, 3), (2, 3, 4, 4)),
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("label, layer, shape", LAYERS, ids=[x[0] for x in LAYERS])
def test_weight_gradient_is_backward_times_forward(label, layer, shape, training, rng):
    layer = layer.double().train(training)
    with dg.no_grad():  # non-trivial weights and statistics
        for p in layer.parameters():
            p.copy_(rng.standard_normal(p.shape))
        for name, b in layer.named_buffers():
            if name == "running_var":
                b.copy_(rng.uniform(0.5, 2, b.shape))
            elif name == "running_mean":
                b.copy_(rng.standard_normal(b.shape))
    model = nn.Sequential(layer, nn.Tanh())
    ledger = Ledger.record(model, rng.standard_normal(shape), None, lambda out: (out * out).sum())
    checks = ledger.check_products()
    assert {c.param for c in checks} == {n for n, _ in layer.named_parameters()}
    assert all(c.rel_error < 1e-12 for c in checks), checks
    # the check can fail: a backward signal that is not the one backprop used breaks the identity
    ledger[0].output_grad = ledger[0].output_grad * 1.001
    assert all(c.rel_error > 1e-5 for c in ledger.check_products() if c.param == "weight")


def test_finite_differences_agree_in_train_mode_with_dropout_and_batch_statistics(rng):
    model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)).double()
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    dg.manual_seed(3)
    ledger = Ledger.record(model, x, y, nn.CrossEntropyLoss())
    stats_after = model[1].running_mean.data.copy()
    weights = {k: v.data.copy() for k, v in model.state_dict().items()}
    checks = ledger.finite_differences(entries=4)
    assert [(c.layer, c.param) for c in checks] == [("0", "weight"), ("0", "bias"), ("1", "weight"), ("1", "bias"),
                                                   ("4", "weight"), ("4", "bias")]
    assert all(len(c.entries) == 4 for c in checks if c.param == "weight")
    assert max(c.max_rel_error for c in checks) < 1e-6
    # the model is left as the recorded pass left it
    np.testing.assert_array_equal(model[1].running_mean.data, stats_after)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.data, weights[k])
    with dg.no_grad():
        model[0].weight.add_(1.0)
    with pytest.raises(ExplainError, match="parameter 0.weight changed after the ledger was recorded"):
        ledger.finite_differences()


def test_finite_differences_see_a_wrong_gradient(rng):
    model = mlp()
    ledger = Ledger.record(model, rng.standard_normal((3, 5)), rng.integers(0, 3, 3), nn.CrossEntropyLoss())
    ledger[0].grads["weight"] = ledger[0].grads["weight"] * 1.01
    worst = {(c.layer, c.param): c.max_rel_error for c in ledger.finite_differences()}
    assert worst[("0", "weight")] > 5e-3 and worst[("2", "weight")] < 1e-6


def test_any_module_its_leaf_layers_and_errors(rng):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    net = Net().double()
    ledger = Ledger.record(net, rng.standard_normal((2, 3)), rng.standard_normal((2, 2)), nn.MSELoss())
    assert [(r.name, r.type) for r in ledger] == [("fc1", "Linear"), ("act", "Tanh"), ("fc2", "Linear")]
    assert all(c.rel_error < 1e-12 for c in ledger.check_products())

    shared = nn.Linear(2, 2).double()
    twice = nn.Sequential(shared, nn.Tanh(), shared)
    with pytest.raises(ExplainError, match="layer 0 \\(Linear\\) ran twice in one forward pass"):
        Ledger.record(twice, rng.standard_normal((1, 2)), None, lambda out: out.sum())
    with pytest.raises(ExplainError, match="the loss must be a scalar tensor"):
        Ledger.record(net, rng.standard_normal((2, 3)), None, lambda out: out)
    with pytest.raises(ExplainError, match="not a module of the model"):
        Ledger(net, layers=[nn.Tanh()])


def test_summary_has_the_issue_keys_and_its_figures(rng):
    model = mlp()
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    ledger = Ledger.record(model, x, y, nn.CrossEntropyLoss())
    s = summarize(ledger, lr=0.1)
    assert set(s) == {"loss", "layers"} and s["loss"] == ledger.loss
    for layer, rec in zip(s["layers"], ledger):
        assert set(layer) == {"index", "type", "input_shape", "output_shape", "forward", "backward", "params"}
        assert set(layer["forward"]) == set(layer["backward"]) == {"mean", "std", "min", "max"}
        assert layer["output_shape"] == list(rec.output.shape) and layer["type"] == type(model[rec.index]).__name__
        assert layer["forward"]["std"] == pytest.approx(np.std(rec.output), rel=1e-12)  # population std
        assert layer["backward"]["max"] == rec.output_grad.max()
        for name, p in layer["params"].items():
            assert set(p) == {"grad_norm", "update_ratio", "fd_max_rel_error"}
            w = dict(model[rec.index].named_parameters())[name].data
            if np.any(w):
                assert p["update_ratio"] == pytest.approx(0.1 * p["grad_norm"] / np.linalg.norm(w), rel=1e-12)
            else:  # the Pointwise bias starts at 0: no ratio to a zero weight
                assert p["update_ratio"] is None and rec.type == "Pointwise"
            assert p["fd_max_rel_error"] < 1e-6
    assert list(s["layers"][3]["params"]) == ["bias"]  # the Pointwise layer
    text = ledger_text(ledger, s, ledger.check_products())
    assert "δᵀ x: rel. difference" in text and "Σ δ·h'(x + b)" in text and "4.bias" in text
