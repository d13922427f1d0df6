"""The benchmark suite runs, and its hand-written NumPy reference computes the step the frameworks do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deltagrad as dg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import run_one  # noqa: E402
from bench.numpy_by_hand import ByHand  # noqa: E402
from bench.workloads import LR, MOMENTUM, batches, data  # noqa: E402


def test_the_step_by_hand_is_deltagrads_step():
    """Same weights, same batches: the NumPy-by-hand MLP and deltagrad's (nn, CrossEntropyLoss, SGD) agree."""
    sizes = [64, 32, 10]
    hand = ByHand(sizes)
    layers = [dg.nn.Linear(64, 32), dg.nn.ReLU(), dg.nn.Linear(32, 10)]
    model = dg.nn.Sequential(*layers)
    for layer, w, b in zip(layers[::2], hand.weights, hand.biases):
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    opt = dg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = data("digits-mlp")
    for xb, yb in batches(x, y, 16, 4):
        opt.zero_grad()
        loss = dg.nn.functional.cross_entropy(model(dg.from_numpy(xb)), dg.from_numpy(yb))
        loss.backward()
        opt.step()
        assert hand.step(xb, yb) == pytest.approx(loss.item(), rel=1e-5)
    for layer, w, b in zip(layers[::2], hand.weights, hand.biases):
        np.testing.assert_allclose(layer.weight.data, w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.bias.data, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("framework", ["deltagrad", "deltagrad-captured", "numpy"])
def test_one_run_reports_its_speed_and_memory(framework):
    out = run_one.main(framework, "digits-mlp")
    assert out["fw"] == framework and out["steps_per_s"] > 0 and out["peak_rss_mb"] > 0
    assert np.isfinite(out["loss"]) and out["loss"] < 2.3  # it trained


def test_the_side_by_side_table():
    out = subprocess.run([sys.executable, "-m", "bench", "digits-mlp", "--rounds", "1", "--frameworks", "deltagrad",
                          "numpy"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "digits-mlp (median of 1 alternating rounds; goal ≥ 3.0× torch)" in out.stdout
    assert "deltagrad " in out.stdout and "numpy " in out.stdout
    bad = subprocess.run([sys.executable, "-m", "bench", "resnet"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown workload 'resnet'" in bad.stderr


def test_the_end_to_end_time_of_deltagrad_train(tmp_path):
    """bench.cli_time runs the command in fresh processes (here 2 epochs, once against this same tree) and reports
    the medians and their ratio; it checks each run's curves.png. No timing is asserted: the machine is shared."""
    out = subprocess.run([sys.executable, "-m", "bench.cli_time", "--runs", "1", "--warmup", "0", "--against",
                          str(ROOT / "src"), "--json", "--", "--epochs", "2"], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert "deltagrad train --quiet --epochs 2: median of 1 runs" in out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for tree in ("this", "against"):
        s = result[tree]
        assert s["runs"] == 1 and s["wall_s"] > s["train_seconds"] > 0 and s["goal"] == 2.0
        assert s["ratio"] == pytest.approx(s["wall_s"] / s["train_seconds"], rel=0.02)
    assert result["wall_ratio_this_to_against"] > 0
    bad = subprocess.run([sys.executable, "-m", "bench.cli_time", "--against", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no deltagrad package there" in bad.stderr
