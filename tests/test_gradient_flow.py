"""Gradient flow (``deltagrad.explain.gradient_flow`` and ``deltagrad gradients``): the notes' claims about vanishing
and exploding gradients at depth 20 and width 64, the variance rule Var[o] = n_in σ², the per-layer figures
against torch hooks on the same weights, and the command's table, JSON and PNG."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import deltagrad
from deltagrad import nn
from deltagrad import random as dg_random
from deltagrad.cli.main import main
from deltagrad.explain import ExplainError
from deltagrad.explain.gradient_flow import (
    INITS,
    build_stack,
    gradient_flow,
    init_weight,
    stack_flow,
    variance_check,
    verdict,
)
from deltagrad.train.api import train_run


def ratio(r):
    """dL/dx at the first layer over dL/dx at the last."""
    return r["grad_rms"][0] / r["grad_rms"][-1]


# -- the notes' claims, at depth 20 and width 64 -----------------------------------------------------------------
@pytest.mark.parametrize("init", ["xavier", "small"])
def test_sigmoid_gradients_vanish(init):
    r = stack_flow(20, 64, "sigmoid", init)
    assert len(r["grad_rms"]) == 20
    assert ratio(r) < 1e-3, ratio(r)  # sigmoid' <= 1/4 at every one of the 19 steps down
    assert verdict(r["grad_rms"]) == "vanishing"


def test_tanh_with_unit_normal_weights_explodes():
    r = stack_flow(20, 64, "tanh", "normal")
    assert ratio(r) > 1e3, ratio(r)
    assert verdict(r["grad_rms"]) == "exploding"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tanh_with_xavier_stays_within_ten_times(seed):
    g = stack_flow(20, 64, "tanh", "xavier", seed=seed)["grad_rms"]
    assert max(g) / min(g) < 10, (max(g), min(g))


def test_relu_needs_kaimings_gain():
    """Xavier (gain 1) halves the variance at every ReLU; He's √2 holds it."""
    xavier, kaiming = stack_flow(20, 64, "relu", "xavier"), stack_flow(20, 64, "relu", "kaiming")
    assert ratio(xavier) < 1e-2
    assert 0.1 < ratio(kaiming) < 10
    assert 0.5 < kaiming["act_std"][-1] / kaiming["act_std"][0] < 2


def test_results_repeat_with_the_seed_and_change_without_it():
    a, b, c = (stack_flow(6, 16, "tanh", "normal", batch=32, seed=s) for s in (5, 5, 6))
    assert a == b
    assert a["grad_rms"] != c["grad_rms"]


def test_the_stack_leaves_the_global_generator_alone():
    dg_random.manual_seed(123)
    expected = deltagrad.randn(3).numpy()
    dg_random.manual_seed(123)
    build_stack(4, 8, "relu", "kaiming", seed=0)
    assert np.array_equal(deltagrad.randn(3).numpy(), expected)


@pytest.mark.parametrize("init, activation, std", [
    ("normal", "tanh", 1.0), ("small", "tanh", 0.01), ("xavier", "relu", math.sqrt(2 / (300 + 200))),
    ("kaiming", "tanh", (5 / 3) / math.sqrt(200)), ("kaiming", "relu", math.sqrt(2 / 200))])
def test_each_initialization_draws_its_std(init, activation, std):
    w = deltagrad.empty(300, 200, dtype=np.float64)
    init_weight(w, init, activation, np.random.default_rng(0))
    assert w.numpy().std() == pytest.approx(std, rel=0.01)
    assert abs(w.numpy().mean()) < 0.01 * std


def test_the_stack_is_what_the_docstring_says():
    m = build_stack(3, 5, "sigmoid", "xavier")
    assert [type(x).__name__ for x in m] == ["Linear", "Sigmoid"] * 3
    assert all(layer.bias.detach().numpy().tolist() == [0.0] * 5 for layer in m[::2])
    assert m[0].weight.dtype == np.float64


# -- the variance rule -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_in, sigma2", [(64, 1.0), (10, 0.25), (100, 0.01)])
def test_variance_of_a_linear_unit_is_n_in_sigma2(n_in, sigma2):
    v = variance_check(n_in, sigma2, samples=1 << 18, seed=3)
    assert v["predicted"] == n_in * sigma2
    assert v["measured"] == pytest.approx(v["predicted"], rel=0.02)  # about 8 standard errors


def test_variance_check_measures_rather_than_repeats():
    """A different σ² gives a different measurement, and the sample really is random."""
    a, b = variance_check(64, 1.0, 4096, seed=0), variance_check(64, 1.0, 4096, seed=1)
    assert a["measured"] != b["measured"]
    assert variance_check(64, 4.0, 4096, seed=0)["measured"] == pytest.approx(4 * a["measured"])


# -- the figures against torch -----------------------------------------------------------------------------------
def torch_flow(torch, layers, x, y, loss):
    """std of each weight layer's output, RMS of dL/d(output) and of dL/dW, by torch hooks and retain_grad."""
    model = torch.nn.Sequential(*layers).double()
    outs = []

    def keep(module, args, out):
        out.retain_grad()
        outs.append(out)

    handles = [m.register_forward_hook(keep) for m in model if hasattr(m, "weight")]
    value = loss(model(torch.tensor(x)), torch.tensor(y))
    value.backward()
    for h in handles:
        h.remove()
    weights = [m.weight for m in model if hasattr(m, "weight")]
    rms = lambda t: float(t.pow(2).mean().sqrt())  # noqa: E731
    return {"act_std": [float(o.detach().std(unbiased=False)) for o in outs],
            "grad_rms": [rms(o.grad) for o in outs], "weight_grad_rms": [rms(w.grad) for w in weights],
            "loss": float(value.detach())}


def copy_into(torch, ours, theirs):
    with torch.no_grad():
        for name, t in theirs.state_dict().items():
            t.copy_(torch.tensor(ours.state_dict()[name].detach().numpy()))


def test_stack_figures_equal_torchs():
    torch = pytest.importorskip("torch")
    ours = build_stack(4, 6, "tanh", "normal", seed=2)
    theirs = torch.nn.Sequential(*[torch.nn.Linear(6, 6) if i % 2 == 0 else torch.nn.Tanh() for i in range(8)])
    copy_into(torch, ours, theirs.double())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 6)), rng.standard_normal((7, 6))
    got = gradient_flow(ours, x, y, nn.EuclideanLoss())
    want = torch_flow(torch, list(theirs), x, y, lambda a, b: 0.5 * ((a - b) ** 2).sum())
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10)
    assert got["layers"] == ["[0] Linear", "[2] Linear", "[4] Linear", "[6] Linear"]


def test_conv_figures_equal_torchs():
    torch = pytest.importorskip("torch")
    deltagrad.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4)).double()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(48, 4)).double()
    copy_into(torch, ours, theirs)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 1, 4, 4)), rng.integers(0, 4, 5)
    got = gradient_flow(ours, x, y, nn.CrossEntropyLoss())
    want = torch_flow(torch, list(theirs), x, y, torch.nn.functional.cross_entropy)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10)


def test_flow_restores_the_mode_and_leaves_grads_alone():
    m = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    m.train()
    a = gradient_flow(m, np.ones((8, 3)), np.zeros((8, 2)), nn.EuclideanLoss())
    b = gradient_flow(m, np.ones((8, 3)), np.zeros((8, 2)), nn.EuclideanLoss())
    assert a == b  # eval mode: no dropout noise
    assert m.training
    assert all(p.grad is None for p in m.parameters())


def test_flow_refuses_what_it_cannot_measure():
    with pytest.raises(ExplainError, match="no Linear or Conv layer"):
        gradient_flow(nn.Sequential(nn.ReLU()), np.ones((2, 3)), np.zeros((2, 3)), nn.EuclideanLoss())
    shared = nn.Linear(3, 3)
    with pytest.raises(ExplainError, match="ran 2 times"):
        gradient_flow(nn.Sequential(shared, nn.Tanh(), shared), np.ones((2, 3)), np.zeros((2, 3)), nn.EuclideanLoss())
    for kwargs, pattern in [({"depth": 0}, "depth must be a positive integer"),
                            ({"activation": "gelu"}, "unknown activation 'gelu'"),
                            ({"init": "orthogonal"}, "unknown initialization 'orthogonal'"),
                            ({"batch": 0}, "batch must be a positive integer")]:
        with pytest.raises(ExplainError, match=pattern):
            stack_flow(**{"depth": 3, "width": 4, **kwargs})


def test_verdicts():
    assert verdict([1e-5, 1.0]) == "vanishing"
    assert verdict([1e4, 1.0]) == "exploding"
    assert verdict([3.0, 1.0]) == "stable"
    assert verdict([0.05, 1.0]) == "drifting"
    assert verdict([float("inf"), 1.0]) == "overflow"


# -- the command -------------------------------------------------------------------------------------------------
def opens(path):
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    return image


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_gradients_command_prints_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "flow.png"
    code = main(["gradients", "--activations", "sigmoid,tanh", "--inits", "small,normal,xavier", "--json",
                 "--out", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    doc = last_json(text)
    assert set(doc) == {"results", "variance_check", "plot"}
    assert doc["plot"] == str(out)
    opens(out)
    assert [(r["activation"], r["init"]) for r in doc["results"]] == [
        (a, i) for a in ("sigmoid", "tanh") for i in ("small", "normal", "xavier")]
    for r in doc["results"]:
        assert {"activation", "init", "depth", "width", "act_std", "grad_rms"} <= set(r)
        assert r["depth"] == 20 and r["width"] == 64 and len(r["grad_rms"]) == len(r["act_std"]) == 20
    assert doc["results"][4] == stack_flow(20, 64, "tanh", "normal")  # the library's figures
    vc = doc["variance_check"]
    assert set(vc) == {"n_in", "sigma2", "predicted", "measured"}
    assert vc["n_in"] == 64 and vc["predicted"] == 64 * vc["sigma2"]
    assert vc["measured"] == pytest.approx(vc["predicted"], rel=0.01)
    assert "tanh       normal" in text and "exploding" in text and "vanishing" in text


def test_gradients_command_takes_depth_width_batch_seed(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["gradients", "--depth", "5", "--width", "8", "--activations", "relu", "--inits", "kaiming",
                 "--batch", "16", "--seed", "3", "--json", "--out", str(out)]) == 0
    (r,) = last_json(capsys.readouterr().out)["results"]
    assert r["depth"] == 5 and r["width"] == 8 and len(r["grad_rms"]) == 5
    assert r["grad_rms"] == stack_flow(5, 8, "relu", "kaiming", batch=16, seed=3)["grad_rms"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("flow") / "run"
    train_run({"train": {"epochs": 2}}, out=run, quiet=True)
    return run


def test_gradients_of_a_run(run_dir, tmp_path, capsys):
    out = tmp_path / "run.png"
    assert main(["gradients", str(run_dir), "--batch", "64", "--json", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    doc = last_json(text)
    (flow,) = doc["results"]
    assert flow["layers"] == ["[1] Linear", "[3] Linear"] and flow["examples"] == 64
    assert all(v > 0 for key in ("act_std", "grad_rms", "weight_grad_rms") for v in flow[key])
    assert doc["plot"] == str(out)
    opens(out)
    assert "[3] Linear" in text


@pytest.mark.parametrize("argv, pattern", [
    (["--activations", "gelu"], "unknown activation 'gelu'"),
    (["--inits", "zero"], "unknown initialization 'zero'"),
    (["--depth", "0"], "depth must be a positive integer"),
    (["--batch", "-2"], "batch must be a positive integer"),
])
def test_gradients_command_errors_are_one_line(argv, pattern, tmp_path, capsys):
    assert main(["gradients", *argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("deltagrad: error: ")
    assert pattern in err
    assert not (tmp_path / "x.png").exists()


def test_stack_flags_do_not_go_with_a_run(run_dir, tmp_path, capsys):
    assert main(["gradients", str(run_dir), "--depth", "3", "--out", str(tmp_path / "x.png")]) == 2
    assert "--depth describe the synthetic stack" in capsys.readouterr().err


def test_inits_listed_in_the_help(capsys):
    assert main(["gradients", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(i in text for i in INITS)


def test_the_readme_example_prints_what_the_readme_shows(capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block, shown), = re.findall(r"```python\n(from deltagrad.explain.gradient_flow import.*?)```\n\n```text\n(.*?)```",
                                 readme, flags=re.S)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == shown


def test_gradients_out_is_checked_before_the_study(tmp_path, capsys):
    assert main(["gradients", "--out", str(tmp_path / "missing" / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deltagrad: error: --out ") and "does not exist" in err
    assert main(["gradients", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_an_overflowing_stack_is_reported_not_crashed(tmp_path, capsys):
    out = tmp_path / "deep.png"
    assert main(["gradients", "--activations", "relu", "--inits", "normal", "--depth", "200", "--width", "16",
                 "--batch", "8", "--json", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    (r,) = last_json(text)["results"]
    assert "inf" in r["grad_rms"] and all(isinstance(v, float) for v in r["act_std"])  # valid JSON throughout
    assert "overflow" in text
    opens(out)
