"""``deltagrad explain`` and ``deltagrad graph``: the text, the ``--json`` object on the last line with the issue's
keys and the library's values, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deltagrad.cli.main import main
from deltagrad.explain import graph as graph_module
from deltagrad.explain.worked_example import worked_example


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from deltagrad.train.api import train_run

    out = tmp_path_factory.mktemp("explain") / "run"
    train_run({"model": {"hidden": [12]}, "train": {"epochs": 1}}, out=out, quiet=True)
    return str(out)


def last_json(capsys):
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1]), out


def test_explain_prints_the_worked_example(capsys):
    assert main(["explain"]) == 0
    text = capsys.readouterr().out
    assert "forward pass" in text and "backward pass" in text and "where the printed notes slip" in text
    assert main(["explain", "--json"]) == 0
    result, _ = last_json(capsys)
    assert result == worked_example()  # exact float64 values survive JSON
    assert np.shape(result["grads"]["W0"]) == (2, 2) and np.shape(result["grads"]["W1"]) == (1, 2)


def test_explain_a_run_json_has_the_issue_keys(run, capsys):
    assert main(["explain", run, "--json"]) == 0
    result, _ = last_json(capsys)
    assert set(result) == {"loss", "layers"} and result["loss"] > 0
    assert [layer["type"] for layer in result["layers"]] == ["Flatten", "Linear", "ReLU", "Linear"]
    first, out = result["layers"][0], result["layers"][-1]
    assert first["input_shape"] == [1, 1, 8, 8] and out["output_shape"] == [1, 10]  # --example 0: one example
    for layer in result["layers"]:
        assert set(layer) == {"index", "type", "input_shape", "output_shape", "forward", "backward", "params"}
        assert set(layer["forward"]) == set(layer["backward"]) == {"mean", "std", "min", "max"}
        for p in layer["params"].values():
            assert set(p) == {"grad_norm", "update_ratio", "fd_max_rel_error"}
            assert p["fd_max_rel_error"] < 1e-5 and 0 < p["update_ratio"] < 1
    assert list(result["layers"][1]["params"]) == ["weight", "bias"]
    # the backward signal at the logits of a softmax cross-entropy sums to 0
    assert abs(out["backward"]["mean"]) < 1e-12

    assert main(["explain", run, "--batch", "5", "--json"]) == 0
    batch, _ = last_json(capsys)
    assert batch["layers"][0]["input_shape"] == [5, 1, 8, 8]
    assert main(["explain", run, "--example", "3", "--json"]) == 0
    third, _ = last_json(capsys)
    assert third["loss"] != result["loss"]


def test_explain_a_run_text(run, capsys):
    assert main(["explain", run, "--example", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"ledger of {run} on test example 2 (target ")
    assert "dL/dx(3) = [" in text  # the 10 logits' backward signal, in full
    assert "1.weight" in text and "δᵀ x: rel. difference" in text and "lr·‖∇W‖/‖W‖" in text


@pytest.mark.parametrize("argv, message", [
    (["explain", "RUN", "--example", "100000"], "--example must be between 0 and"),
    (["explain", "RUN", "--batch", "0"], "--batch must be between 1 and the"),
    (["explain", "--example", "1"], "give RUN_DIR too"),
])
def test_explain_errors_are_one_line(argv, message, run, capsys):
    assert main([run if a == "RUN" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deltagrad: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_graph_json_and_the_dot_file(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    out = tmp_path / "step.svg"
    assert main(["graph", run, "--out", str(out), "--json"]) == 0
    result, text = last_json(capsys)
    assert set(result) == {"dot", "rendered", "nodes", "edges"}
    assert result["dot"] == str(tmp_path / "step.dot") and result["rendered"] is None
    assert "apt-get install graphviz" in text
    source = (tmp_path / "step.dot").read_text()
    assert source.count("->") == result["edges"] and result["nodes"] == 8  # 2 Linear, ReLU, loss; 4 parameters
    for name in ("1.weight", "1.bias", "3.weight", "3.bias"):
        assert f'label="{name}\\n' in source
    assert main(["graph", run, "--out", str(tmp_path / "g.dot")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "g.dot").exists()
    assert main(["graph", run, "--out", str(tmp_path / "g.gif")]) == 2
    assert "must end in .dot" in capsys.readouterr().err
