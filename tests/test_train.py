"""The fit loop and run folders: accuracy on the digits, bit-for-bit repeats and resumes, divergence, clipping,
schedules, early stopping, gradient norms, and checkpoints without pickle."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import io as dio
from deltagrad.train import (
    CheckpointError,
    DivergenceError,
    Trainer,
    build_model,
    check_config,
    evaluate_run,
    load_data,
    predict_run,
    resolve,
    run_info,
    toml_io,
    train_run,
)
from run_files import checkpoint_dir, current, resign

STEADY = ("seconds", "steps_per_second")  # the only fields of a metrics line that may differ between runs


def weights(run):
    return {k: v.data for k, v in dio.load(current(run, "model.safetensors")).items()}


def same_weights(a, b):
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def metric_lines(run):
    lines = [json.loads(x) for x in current(run, "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if k not in STEADY} for rec in lines]


# -- the README's promises ---------------------------------------------------------------------------------------
def test_default_mlp_on_digits_reaches_97_percent(tmp_path):
    # about 1 s on an idle 2-core machine (no time limit asserted: shared CI machines stall BLAS threads)
    result = train_run({}, out=tmp_path / "run", quiet=True)
    assert result["test_accuracy"] >= 0.97, result
    assert result["epochs"] == 30 and result["model"] == "mlp" and result["dataset"] == "digits"


def test_cnn_on_digits_reaches_98_5_percent(tmp_path):
    result = train_run({"model": {"name": "cnn"}}, out=tmp_path / "run", quiet=True)
    assert result["test_accuracy"] >= 0.985, result


# -- determinism and resume --------------------------------------------------------------------------------------
def small(**train):
    # dropout and momentum: both the global RNG and the optimizer state must be restored on resume
    return {"model": {"hidden": [32], "dropout": 0.2}, "train": {"epochs": 3, "batch_size": 64, **train}}


def test_cpu_run_repeats_bit_for_bit_and_the_seed_matters(tmp_path):
    train_run(small(seed=1), out=tmp_path / "a", quiet=True)
    train_run(small(seed=1), out=tmp_path / "b", quiet=True)
    train_run(small(seed=2), out=tmp_path / "c", quiet=True)
    assert same_weights(tmp_path / "a", tmp_path / "b")
    assert metric_lines(tmp_path / "a") == metric_lines(tmp_path / "b")
    assert not same_weights(tmp_path / "a", tmp_path / "c")


@pytest.mark.parametrize("optimizer, scheduler", [("sgd", "step"), ("adam", "plateau")])
def test_resume_equals_an_uninterrupted_run_bit_for_bit(tmp_path, optimizer, scheduler):
    cfg = small(epochs=5)
    cfg.update(optimizer={"name": optimizer}, scheduler={"name": scheduler, **({"step_size": 2} if
                                                                                 scheduler == "step" else {})})
    train_run(cfg, out=tmp_path / "straight", quiet=True)
    cfg["train"]["epochs"] = 2
    train_run(cfg, out=tmp_path / "resumed", quiet=True)
    result = train_run(resume=tmp_path / "resumed", epochs=5, quiet=True)
    assert result["epochs"] == 5
    assert same_weights(tmp_path / "straight", tmp_path / "resumed")
    assert metric_lines(tmp_path / "straight") == metric_lines(tmp_path / "resumed")
    opt_a = dio.load(current(tmp_path / "straight", "optimizer.safetensors"))
    opt_b = dio.load(current(tmp_path / "resumed", "optimizer.safetensors"))
    assert opt_a.keys() == opt_b.keys() and all(np.array_equal(opt_a[k].data, opt_b[k].data) for k in opt_a)
    for name in ("metrics.json",):
        a = json.loads((tmp_path / "straight" / name).read_text())
        b = json.loads((tmp_path / "resumed" / name).read_text())
        assert a["test_loss"] == b["test_loss"] and a["test_accuracy"] == b["test_accuracy"]
    assert toml_io.load(tmp_path / "resumed" / "config.toml")["train"]["epochs"] == 5


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    train_run(small(epochs=2), out=tmp_path / "r", quiet=True)
    before = weights(tmp_path / "r")
    result = train_run(resume=tmp_path / "r", quiet=True)
    assert result["epochs"] == 2
    after = weights(tmp_path / "r")
    assert all(np.array_equal(before[k], after[k]) for k in before)


# -- the run folder ----------------------------------------------------------------------------------------------
def test_run_folder_layout_and_contents(tmp_path):
    run = tmp_path / "run"
    result = train_run(small(epochs=2), out=run, quiet=True)
    names = sorted(p.name for p in run.iterdir() if p.name != ".lock")
    assert names == ["checkpoint.json", "checkpoints", "config.toml", "curves.png", "metrics.json"]
    # the current checkpoint and the one before it (a reader may still be reading it)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-000001", "epoch-000002"]
    assert checkpoint_dir(run) == run / "checkpoints" / "epoch-000002"
    assert sorted(p.name for p in checkpoint_dir(run).iterdir()) == ["metrics.jsonl", "model.safetensors",
                                                                      "optimizer.safetensors", "state.json"]
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    final = json.loads((run / "metrics.json").read_text())
    assert final["test_accuracy"] == result["test_accuracy"] and math.isfinite(final["test_loss"])
    lines = [json.loads(x) for x in current(run, "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert set(lines[0]) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "grad_norm"}
    assert list(lines[0]["grad_norm"]) == ["1.Linear", "4.Linear"]
    assert all(0 < v < math.inf for v in lines[0]["grad_norm"].values())
    state = json.loads(current(run, "state.json").read_text())
    assert state["epoch"] == 2 and state["step"] == 2 * math.ceil(1258 / 64)
    assert [p.name for p in run.glob(".*")] == [".lock"], "temporary files left behind"
    assert not list(run.glob("checkpoints/*/.*")), "temporary files left behind"


def test_config_rebuilds_the_model_without_code(tmp_path):
    run = tmp_path / "run"
    train_run(small(epochs=1), out=run, quiet=True)
    cfg = check_config(toml_io.load(run / "config.toml"))
    model = build_model(cfg["model"]["layers"])
    model.load_state_dict(dio.load(current(run, "model.safetensors")))
    model.eval()
    data = load_data(cfg)
    x, y = data.test.arrays
    with dg.no_grad():
        acc = float((model(dg.tensor(x)).numpy().argmax(1) == y).mean())
    assert acc == pytest.approx(evaluate_run(run)["test_accuracy"])
    # and training from the saved config gives the same run again
    train_run(toml_io.load(run / "config.toml"), out=tmp_path / "again", quiet=True)
    assert same_weights(run, tmp_path / "again")


def test_out_dir_holding_a_run_is_refused_and_left_alone(tmp_path):
    run = tmp_path / "run"
    train_run(small(epochs=1), out=run, quiet=True)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(CheckpointError, match="already holds a run; continue it with --resume"):
        train_run(small(epochs=1), out=run, quiet=True)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before


# -- divergence --------------------------------------------------------------------------------------------------
def test_divergence_stops_at_the_first_nonfinite_loss_and_keeps_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    # the learning rate grows a millionfold per epoch: epoch 1 trains, a later one explodes
    cfg = {"model": {"hidden": [32]}, "optimizer": {"lr": 0.01, "momentum": 0.0},
           "scheduler": {"name": "exponential", "gamma": 1e6}, "train": {"epochs": 8}}
    with pytest.raises(DivergenceError) as e:
        train_run(cfg, out=run, quiet=True)
    k = e.value.epoch
    assert k >= 2
    assert re.fullmatch(rf"training diverged: .* at epoch {k}, step \d+ \(step {e.value.step} of the run\); the "
                        rf"checkpoint of epoch {k - 1} in .* is kept\. .*", str(e.value))
    state = json.loads(current(run, "state.json").read_text())
    assert state["epoch"] == k - 1
    assert all(np.isfinite(w).all() for w in weights(run).values())
    assert len(current(run, "metrics.jsonl").read_text().splitlines()) == k - 1
    assert not (run / "metrics.json").exists()


def test_divergence_in_the_first_epoch_keeps_the_initial_weights(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(DivergenceError, match=r"at epoch 1, step .*the checkpoint of epoch 0 \(the initial weights\)"):
        train_run({"data": {"dataset": "sine"}, "optimizer": {"lr": 1e6}, "train": {"epochs": 2}}, out=run,
                  quiet=True)
    assert json.loads(current(run, "state.json").read_text())["epoch"] == 0
    assert all(np.isfinite(w).all() for w in weights(run).values())
    # and the run resumes from there (diverging again at the same step: it is deterministic)
    with pytest.raises(DivergenceError, match=r"at epoch 1, step"):
        train_run(resume=run, quiet=True)


def test_divergence_without_a_run_folder():
    t = trainer_for({"data": {"dataset": "sine"}, "optimizer": {"lr": 1e6}, "train": {"epochs": 1}})
    with pytest.raises(DivergenceError, match="nothing was saved"):
        t.fit()


# -- the loop's options ------------------------------------------------------------------------------------------
def trainer_for(cfg):
    cfg = check_config(cfg)
    data = load_data(cfg)
    resolve(cfg, data)
    return Trainer(cfg, data, quiet=True)


def test_gradient_clipping_bounds_the_update_norm():
    t = trainer_for({"model": {"hidden": [16]}, "train": {"clip_grad_norm": 0.01, "epochs": 1}})
    seen = []
    step = t.optimizer.step

    def recording_step(*a, **k):
        seen.append(math.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum()) for p in t.params)))
        return step(*a, **k)

    t.optimizer.step = recording_step
    t.fit()
    assert len(seen) == 40 and max(seen) <= 0.01 * (1 + 1e-5)


def test_step_schedule_and_logged_learning_rates(tmp_path):
    t = trainer_for({"scheduler": {"name": "step", "step_size": 2, "gamma": 0.5}, "model": {"hidden": [8]},
                     "train": {"epochs": 5}})
    hist = t.fit()
    assert [h["lr"] for h in hist] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])


def test_early_stopping(tmp_path):
    result = train_run({"train": {"patience": 2, "epochs": 60}}, out=tmp_path / "r", quiet=True)
    assert result["stopped_early"] and result["epochs"] < 60
    again = train_run(resume=tmp_path / "r", epochs=80, quiet=True)
    assert again["epochs"] == result["epochs"]


def test_vanishing_gradients_show_in_the_per_layer_norms():
    # a deep sigmoid network: the first layer's gradient is far smaller than the last's (the notes' warning)
    t = trainer_for({"model": {"hidden": [32] * 6, "activation": "sigmoid"}, "optimizer": {"lr": 0.01},
                     "train": {"epochs": 1}})
    norms = t.fit()[0]["grad_norm"]
    names = list(norms)
    assert len(names) == 7
    assert norms[names[0]] < norms[names[-1]] / 100


def test_regression_on_the_noisy_sine(tmp_path):
    result = train_run({"data": {"dataset": "sine"}, "model": {"hidden": [64, 64], "activation": "tanh"},
                        "optimizer": {"name": "adam", "lr": 0.01}, "train": {"epochs": 40}},
                       out=tmp_path / "r", quiet=True)
    assert result["test_accuracy"] is None
    assert result["test_loss"] < 0.02   # the noise variance is 0.01
    pred = predict_run(tmp_path / "r", np.array([[0.0], [np.pi / 2]], np.float32))["predictions"]
    np.testing.assert_allclose(pred[:, 0], [0.0, 1.0], atol=0.15)


@pytest.mark.parametrize("dataset, accuracy", [("iris", 0.9), ("xor", 0.97), ("spirals", 0.95)])
def test_other_builtin_sets_train(tmp_path, dataset, accuracy):
    result = train_run({"data": {"dataset": dataset}, "model": {"hidden": [64, 64]},
                        "optimizer": {"name": "adam", "lr": 0.01}, "scheduler": {"name": "none"},
                        "train": {"epochs": 60}}, out=tmp_path / "r", quiet=True)
    assert result["test_accuracy"] >= accuracy, result


def test_custom_layer_list_and_init(tmp_path):
    layers = [{"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 32},
              {"type": "BatchNorm1d", "num_features": 32}, {"type": "Tanh"},
              {"type": "Linear", "in_features": 32, "out_features": 10}]
    result = train_run({"model": {"layers": layers, "init": "xavier_uniform"}, "train": {"epochs": 3}},
                       out=tmp_path / "r", quiet=True)
    assert result["model"] == "custom" and result["test_accuracy"] > 0.9
    assert "2.running_mean" in weights(tmp_path / "r")


def test_csv_run_predicts_original_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    label = np.where(x[:, 0] + x[:, 1] > 0, 7, 3)
    p = tmp_path / "t.csv"
    np.savetxt(p, np.column_stack([x, label]), delimiter=",", header="a,b,cls", comments="", fmt="%.6g")
    result = train_run({"data": {"dataset": str(p), "target": "cls"}, "train": {"epochs": 10}},
                       out=tmp_path / "r", quiet=True)
    assert result["test_accuracy"] > 0.95
    out = predict_run(tmp_path / "r", p)
    assert set(out["predictions"]) <= {3, 7} and len(out["predictions"]) == 300
    assert np.mean(np.array(out["predictions"]) == label) > 0.95


# -- reading runs back -------------------------------------------------------------------------------------------
def test_eval_and_info_of_a_run(tmp_path):
    run = tmp_path / "r"
    result = train_run(small(epochs=1), out=run, quiet=True)
    ev = evaluate_run(run)
    assert ev["test_accuracy"] == result["test_accuracy"] and ev["test_loss"] == result["test_loss"]
    info = run_info(run)
    assert info["epoch"] == 1 and info["parameters"] == 64 * 32 + 32 + 32 * 10 + 10
    assert info["metrics"]["test_accuracy"] == result["test_accuracy"]


def test_bad_checkpoints_are_named(tmp_path):
    run = tmp_path / "r"
    train_run(small(epochs=1), out=run, quiet=True)
    model = current(run, "model.safetensors")
    good = model.read_bytes()
    model.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: [\d,]+ bytes, but the checkpoint recorded"):
        evaluate_run(run)
    resign(run)  # the checks behind the checksum: what a damaged file would meet if its record were damaged too
    with pytest.raises(CheckpointError, match=r"model\.safetensors: truncated"):
        evaluate_run(run)
    dio.save({"foo": np.zeros(3, np.float32)}, model)
    resign(run)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: does not match the model in config\.toml: "
                                              r"Missing key\(s\)"):
        evaluate_run(run)
    model.unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: no such file \(the checkpoint of epoch 1 is "
                                              r"incomplete\)"):
        evaluate_run(run)
    model.write_bytes(good)
    resign(run)
    current(run, "state.json").write_text("{not json")
    resign(run)
    with pytest.raises(CheckpointError, match=r"state\.json: not valid JSON"):
        train_run(resume=run, epochs=2, quiet=True)
