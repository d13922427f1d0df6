"""Unit visualization (``deltagrad.explain.visualize`` and ``deltagrad visualize``): saliency against torch's input
gradient on the same weights, activation maximization that raises each class's score until the model predicts that
class (digits MLP and a small digits CNN), deep dream, and the command's PNGs and JSON."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import deltagrad
from deltagrad import nn
from deltagrad.cli.main import main
from deltagrad.explain import ExplainError
from deltagrad.explain import visualize as V
from deltagrad.train.api import open_run, train_run

CNN = {"name": "cnn", "channels": [8], "hidden": [32]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("visualize")
    train_run({"train": {"epochs": 3}}, out=root / "mlp", quiet=True)
    train_run({"train": {"epochs": 10}, "model": CNN}, out=root / "cnn", quiet=True)
    train_run({"train": {"epochs": 2}, "data": {"dataset": "iris"}}, out=root / "iris", quiet=True)
    return root


def bounds_of(data):
    x, _ = data.train.arrays
    return float(x.min()), float(x.max())


def torch_twin(torch, trainer):
    """The run's network in torch, float64, with the run's weights."""
    layers = [getattr(torch.nn, spec["type"])(**{k: v for k, v in spec.items() if k != "type"})
              for spec in trainer.cfg["model"]["layers"]]
    twin = torch.nn.Sequential(*layers).double().eval()
    with torch.no_grad():
        for name, t in twin.state_dict().items():
            t.copy_(torch.tensor(trainer.model.state_dict()[name].detach().numpy()))
    return twin


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_saliency_is_torchs_input_gradient(runs, kind):
    torch = pytest.importorskip("torch")
    trainer, data = open_run(runs / kind)
    model = trainer.model.double()
    x, _ = data.test.arrays
    x = x[:12].astype(np.float64)
    got = V.saliency(model, x)
    twin = torch_twin(torch, trainer)
    xt = torch.tensor(x, requires_grad=True)
    scores = twin(xt)
    predicted = scores.argmax(dim=1)
    scores.gather(1, predicted[:, None]).sum().backward()
    assert got["predicted"].tolist() == predicted.tolist()
    np.testing.assert_allclose(got["score"], scores.gather(1, predicted[:, None])[:, 0].detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(got["saliency"], xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    assert np.abs(got["saliency"]).max() > 0


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_each_class_image_raises_its_score_and_is_predicted_as_it(runs, kind):
    trainer, data = open_run(runs / kind)
    model = trainer.model
    out = len(model) - 1
    r = V.activation_max(model, (1, 8, 8), out, range(10), bounds=bounds_of(data))
    assert r["images"].shape == (10, 1, 8, 8)
    assert np.all(r["activation_after"] > r["activation_before"] + 1)
    assert r["predicted"].tolist() == list(range(10))
    scores, _ = V.predict(model, r["images"])
    np.testing.assert_allclose(scores[np.arange(10), np.arange(10)], r["activation_after"], rtol=1e-5)
    lo, hi = bounds_of(data)
    assert r["images"].min() >= lo and r["images"].max() <= hi


def test_activation_max_from_zeros_and_of_a_hidden_unit(runs):
    trainer, data = open_run(runs / "mlp")
    r = V.activation_max(trainer.model, (1, 8, 8), 3, [4], init="zeros", bounds=bounds_of(data))
    assert r["predicted"].tolist() == [4]
    # the hidden Linear layer (a ReLU's output can be stuck at 0, where its gradient is 0 too)
    hidden = V.activation_max(trainer.model, (1, 8, 8), 1, [0, 5, 7], steps=100, l2=0.01, tv=0.01)
    assert np.all(hidden["activation_after"] > hidden["activation_before"] + 1)


def test_a_conv_unit_is_its_channel_at_the_centre():
    out = deltagrad.tensor(np.arange(2 * 3 * 5 * 4, dtype=np.float64).reshape(2, 3, 5, 4))
    np.testing.assert_array_equal(V.unit_activation(out, 1).numpy(), out.numpy()[:, 1, 2, 2])
    np.testing.assert_allclose(V.unit_activation(out, None).numpy(), (out.numpy() ** 2).mean(axis=(1, 2, 3)))
    with pytest.raises(ExplainError, match="unit 3 is out of range"):
        V.unit_activation(out, 3)


def test_total_variation_is_the_squared_differences():
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 5))
    want = (np.diff(x, axis=2) ** 2).sum(axis=(1, 2, 3)) + (np.diff(x, axis=3) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(V.total_variation(deltagrad.tensor(x)).numpy(), want)


def test_ascent_follows_the_gradient_of_a_known_objective():
    """J(x) = w·x − λ‖x‖² peaks at w / 2λ; plain gradient ascent with a small step gets there."""
    w = np.array([[1.0, -2.0, 0.5]])
    wt = deltagrad.tensor(w)
    x = V.ascend(lambda x: (x * wt).sum(dim=1) - 0.5 * (x * x).sum(dim=1), np.zeros((1, 3)), 200, 0.1)
    np.testing.assert_allclose(x, w / (2 * 0.5), rtol=1e-6)
    clipped = V.ascend(lambda x: (x * wt).sum(dim=1), np.zeros((1, 3)), 50, 0.1, bounds=(-0.3, 0.2))
    np.testing.assert_allclose(clipped, [[0.2, -0.3, 0.2]])


def test_deep_dream_amplifies_the_layer(runs):
    trainer, data = open_run(runs / "cnn")
    x, _ = data.test.arrays
    r = V.deep_dream(trainer.model, x[:4], 6, bounds=bounds_of(data))
    assert r["images"].shape == (4, 1, 8, 8)
    assert np.all(r["activation_after"] > 1.2 * r["activation_before"])
    assert not np.allclose(r["images"], x[:4])
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3), nn.ReLU(), nn.Linear(3, 2))
    model.train()
    V.deep_dream(model, x[:2], 2, steps=2)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_visualize_refuses_what_it_cannot_show():
    mlp = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ExplainError, match=r"needs an image model .* shape \(4,\)"):
        V.activation_max(mlp, (4,), 0, [0])
    with pytest.raises(ExplainError, match=r"layer 5 is out of range: the model has layers 0..0"):
        V.activation_max(mlp, (1, 2, 2), 5, [0])
    with pytest.raises(ExplainError, match="lr must be a positive number"):
        V.activation_max(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), (1, 2, 2), 1, [0], lr=0.0)
    with pytest.raises(ExplainError, match="init must be 'noise' or 'zeros'"):
        V.activation_max(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), (1, 2, 2), 1, [0], init="ones")


# -- the command -------------------------------------------------------------------------------------------------
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def opens(path):
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 150 and image.shape[1] > 300
    return image


def snapshot(run):
    """Every file of the run folder outside visualize/, with its size and time of change."""
    return {p: (os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in run.rglob("*")
            if p.is_file() and "visualize" not in p.relative_to(run).parts}


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_visualize_writes_the_grids_and_prints_json(runs, kind, capsys):
    run = runs / kind
    before = snapshot(run)
    code, out, err = run_cli(capsys, "visualize", run, "--json")
    assert code == 0, err
    doc = json.loads(out.strip().splitlines()[-1])
    images = doc["images"]
    assert {e["kind"] for e in images} == {"saliency", "activation_max", "deep_dream"}
    for e in images:
        assert set(e) >= {"kind", "layer", "unit", "file", "activation_before", "activation_after",
                          "predicted_class"}
        assert os.path.dirname(e["file"]) == str(run / "visualize")
    files = sorted({e["file"] for e in images})
    assert [os.path.basename(f) for f in files] == ["activation_max.png", "deep_dream.png", "saliency.png"]
    for f in files:
        opens(f)
    assert sorted(os.listdir(run / "visualize")) == ["activation_max.png", "deep_dream.png", "saliency.png"]
    classes = [e for e in images if e["kind"] == "activation_max"]
    assert [e["unit"] for e in classes] == list(range(10))
    assert all(e["predicted_class"] == e["unit"] and e["activation_after"] > e["activation_before"]
               for e in classes)
    saliency = [e for e in images if e["kind"] == "saliency"]
    assert [e["target"] for e in saliency] == list(range(10)) and all(e["activation_after"] is None
                                                                      for e in saliency)
    dream = [e for e in images if e["kind"] == "deep_dream"]
    assert all(e["activation_after"] > e["activation_before"] for e in dream)
    assert snapshot(run) == before  # nothing outside visualize/ changed
    assert "10 of 10 predicted as their class" in out


def test_visualize_a_chosen_unit_with_settings(runs, capsys):
    run = runs / "cnn"
    code, out, err = run_cli(capsys, "visualize", run, "--kind", "activation_max,deep_dream", "--layer", "0",
                             "--unit", "3", "--l2", "0.1", "--tv", "0.1", "--steps", "30", "--lr", "0.05",
                             "--init", "zeros", "--seed", "2", "--json")
    assert code == 0, err
    images = json.loads(out.strip().splitlines()[-1])["images"]
    hidden = [e for e in images if e["kind"] == "activation_max" and e["layer"] == 0]
    assert [e["unit"] for e in hidden] == [3]
    assert hidden[0]["file"].endswith("activation_max_layer0.png")
    opens(hidden[0]["file"])
    dream = [e for e in images if e["kind"] == "deep_dream"]
    assert {(e["layer"], e["unit"]) for e in dream} == {(0, 3)}
    assert not any(e["kind"] == "saliency" for e in images)


@pytest.mark.parametrize("argv, pattern", [
    (["--kind", "gradcam"], "unknown --kind gradcam"),
    (["--unit", "2"], "--unit needs --layer"),
    (["--layer", "99"], "layer 99 is out of range"),
    (["--layer", "0", "--unit", "99"], "unit 99 is out of range"),
    (["--lr", "-1"], "lr must be a positive number"),
])
def test_visualize_errors_are_one_line(runs, argv, pattern, capsys):
    code, out, err = run_cli(capsys, "visualize", runs / "mlp", *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("deltagrad: error: ") and pattern in err


def test_visualize_refuses_a_model_that_is_not_of_images(runs, capsys):
    code, out, err = run_cli(capsys, "visualize", runs / "iris")
    assert code == 2
    assert err.startswith("deltagrad: error: visualize needs an image model") and "'iris'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (runs / "iris" / "visualize").exists()


def test_visualize_writes_only_into_a_plain_folder(runs, tmp_path, capsys):
    run = runs / "mlp"
    if (run / "visualize").exists():
        for f in (run / "visualize").iterdir():
            f.unlink()
        (run / "visualize").rmdir()
    (run / "visualize").symlink_to(tmp_path, target_is_directory=True)
    try:
        code, out, err = run_cli(capsys, "visualize", run, "--kind", "saliency")
        assert code == 2 and "is not a plain folder" in err
        assert list(tmp_path.iterdir()) == []
    finally:
        (run / "visualize").unlink()


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = re.findall(r"```python\n(from deltagrad.train.api import open_run\nfrom deltagrad.explain import "
                          r"visualize.*?)```", readme, flags=re.S)
    monkeypatch.chdir(tmp_path)
    train_run({"train": {"epochs": 3}}, out="runs/digits", quiet=True)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "(5, 1, 8, 8) [0 1 2 3 4 5 6 7 8 9]\n"
