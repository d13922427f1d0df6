"""What `deltagrad train` checks before anything is written: layer lists against the data's shapes, settings
that make inputs non-finite or vanish in float32, data sets too small for what the config asks; and the NaN
guard, which names what went non-finite first."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import nn
from deltagrad import random as dg_random
from deltagrad.cli.main import main
from deltagrad.data import DataError, TensorDataset, fit_normalization, load_dataset, split_indices
from deltagrad.train import (
    ConfigError,
    DivergenceError,
    Trainer,
    builders,
    check_config,
    divergence,
    load_data,
    resolve,
    train_run,
)
from deltagrad.train.config import model_dtype, out_of_range
from deltagrad.train.models import LAYER_TYPES, check_shapes, cnn_layers, mlp_layers


def run_main(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, argv, pattern):
    code, out, err = run_main(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("deltagrad: error: "), (out, err)
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def write_toml(path, text):
    path.write_text(text)
    return path


# -- 1. layer lists: each layer gets a shape it takes, and the last gives one output per class ------------------
FLAT = {"type": "Flatten"}


def linear(i, o):
    return {"type": "Linear", "in_features": i, "out_features": o}


def conv(c_in, c_out, k, **kw):
    return {"type": "Conv2d", "in_channels": c_in, "out_channels": c_out, "kernel_size": k, **kw}


POOL = {"type": "MaxPool2d", "kernel_size": 2}

# on the digits: inputs (1, 8, 8), 10 classes
MISFITS = [
    ([FLAT, linear(60, 10)],
     r"^model\.layers\[1\] \(Linear\) gets inputs of shape \(64,\) but needs \(60,\) \(in_features = 60\); "
     r"set in_features = 64$"),
    ([linear(64, 10)],
     r"^model\.layers\[0\] \(Linear\) gets inputs of shape \(1, 8, 8\) but needs \(64,\) .*add \{type = \"Flatten\"\} "
     r"before it$"),
    ([linear(60, 10)], r"model\.layers\[0\] \(Linear\) gets inputs of shape \(1, 8, 8\) but needs \(60,\).*Flatten"
                       r"\"\} before it and set in_features = 64"),
    ([conv(1, 4, 9), FLAT, linear(4, 10)],
     r"^model\.layers\[0\] \(Conv2d\) gets inputs of shape \(1, 8, 8\) but needs at least \(1, 9, 9\); its 9×9 "
     r"window is larger than the padded input 8×8 \(padding 0\)"),
    ([conv(1, 4, 3, padding=1), POOL, POOL, POOL, conv(4, 4, 3), FLAT, linear(4, 10)],
     r"^model\.layers\[4\] \(Conv2d\) gets inputs of shape \(4, 1, 1\) but needs at least \(4, 3, 3\)"),
    ([POOL, POOL, POOL, POOL, FLAT, linear(1, 10)],
     r"^model\.layers\[3\] \(MaxPool2d\) gets inputs of shape \(1, 1, 1\) but needs at least \(1, 2, 2\)"),
    ([conv(3, 4, 3), FLAT, linear(144, 10)],
     r"^model\.layers\[0\] \(Conv2d\) gets inputs of shape \(1, 8, 8\) but needs \(3, 8, 8\); set in_channels = 1$"),
    ([conv(1, 4, 3), conv(8, 4, 3), FLAT, linear(64, 10)],
     r"^model\.layers\[1\] \(Conv2d\) gets inputs of shape \(4, 6, 6\) but needs \(8, 6, 6\); set in_channels = 4$"),
    ([{"type": "Conv1d", "in_channels": 1, "out_channels": 2, "kernel_size": 3}, FLAT, linear(12, 10)],
     r"^model\.layers\[0\] \(Conv1d\) gets inputs of shape \(1, 8, 8\) but needs \(1, L\); Conv1d takes examples "
     r"of channels × length$"),
    ([FLAT, linear(64, 32), {"type": "BatchNorm1d", "num_features": 16}, linear(32, 10)],
     r"^model\.layers\[2\] \(BatchNorm1d\) gets inputs of shape \(32,\) but needs \(16,\); set num_features = 32$"),
    ([conv(1, 4, 3), {"type": "BatchNorm2d", "num_features": 6}, FLAT, linear(144, 10)],
     r"^model\.layers\[1\] \(BatchNorm2d\) gets inputs of shape \(4, 6, 6\) but needs \(6, 6, 6\)"),
    ([FLAT, linear(64, 32), {"type": "BatchNorm2d", "num_features": 32}, linear(32, 10)],
     r"^model\.layers\[2\] \(BatchNorm2d\) gets inputs of shape \(32,\) but needs \(32, H, W\)"),
    ([FLAT, linear(64, 5)],
     r"^model\.layers\[1\] \(Linear\) gives outputs of shape \(5,\) per example, but the data set needs \(10,\) "
     r"\(one score per class, 10 classes\); set out_features = 10 in the last Linear$"),
    ([FLAT, linear(64, 12), {"type": "ReLU"}],
     r"^model\.layers\[2\] \(ReLU\) gives outputs of shape \(12,\) per example, but the data set needs \(10,\)"),
    ([conv(1, 10, 3)],
     r"^model\.layers\[0\] \(Conv2d\) gives outputs of shape \(10, 6, 6\) per example, but the data set needs "
     r"\(10,\) .*end with \{type = \"Flatten\"\} and a Linear with out_features = 10$"),
    ([{"type": "Flatten", "start_dim": 0}, linear(128, 10)],
     r"^model\.layers\[0\] \(Flatten\): start_dim = 0 would merge the examples of a batch"),
    # no rule of its own: the trial forward turns the layer's own error into the same form
    ([{"type": "MaxPool2d", "kernel_size": 3, "padding": 2}, FLAT, linear(9, 10)],
     r"^model\.layers\[0\] \(MaxPool2d\) cannot take inputs of shape \(1, 8, 8\): max_pool2d: padding \(2, 2\) "
     r"should be at most half of kernel_size \(3, 3\)$"),
    ([{"type": "Flatten", "start_dim": 5}, linear(64, 10)],
     r"^model\.layers\[0\] \(Flatten\) cannot take inputs of shape \(1, 8, 8\): start_dim 5 is out of range"),
]


@pytest.mark.parametrize("layers, pattern", MISFITS)
def test_a_layer_that_does_not_fit_is_one_line_and_no_run_folder_is_made(tmp_path, layers, pattern):
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as e:
        train_run({"model": {"layers": layers}, "train": {"epochs": 1}}, out=out, quiet=True)
    assert re.search(pattern, str(e.value)), str(e.value)
    assert "\n" not in str(e.value)
    assert not out.exists()


def test_the_command_line_reports_a_misfit_and_leaves_no_folder(tmp_path, capsys):
    cfg = write_toml(tmp_path / "bad.toml", '[model]\nlayers = [{type = "Flatten"}, '
                                            '{type = "Linear", in_features = 60, out_features = 10}]\n')
    one_line_error(capsys, ["train", "--config", cfg, "--out", tmp_path / "r", "--epochs", "1", "--quiet"],
                   r"model\.layers\[1\] \(Linear\) gets inputs of shape \(64,\) but needs \(60,\)")
    assert not (tmp_path / "r").exists()
    one_line_error(capsys, ["train", "--config", cfg, "--dataset", "iris", "--epochs", "1", "--quiet"],
                   r"model\.layers\[1\] \(Linear\) gets inputs of shape \(4,\) but needs \(60,\)")
    assert not (tmp_path / "runs").exists() and not any(tmp_path.glob("runs"))


def test_the_shapes_are_those_of_the_real_forward_pass():
    x = dg.randn(3, 1, 12, 12)
    lists = [mlp_layers((1, 12, 12), 10, [32, 16], batch_norm=True, dropout=0.1),
             cnn_layers((1, 12, 12), 10, [4, 8], kernel_size=5, hidden=[16], batch_norm=True),
             [conv(1, 3, 3, stride=2, padding=1, dilation=2),
              {"type": "AvgPool2d", "kernel_size": 2, "ceil_mode": True}, {"type": "LeakyReLU"}, FLAT,
              {"type": "Dropout"}, {"type": "Identity"}, linear(27, 10)]]
    for layers in lists:
        shapes = check_shapes(layers, (1, 12, 12), 10)
        model = nn.Sequential(*[getattr(nn, s["type"])(**{k: v for k, v in s.items() if k != "type"})
                                for s in layers]).eval()
        h, seen = x, []
        for m in model:
            h = m(h)
            seen.append(tuple(h.shape[1:]))
        assert shapes == seen


def test_one_dimensional_layers_on_sequences():
    layers = [{"type": "Conv1d", "in_channels": 2, "out_channels": 3, "kernel_size": 3},
              {"type": "BatchNorm1d", "num_features": 3}, {"type": "MaxPool1d", "kernel_size": 2},
              {"type": "AvgPool1d", "kernel_size": 2}, FLAT, linear(3, 1)]
    with pytest.raises(ConfigError, match=r"model\.layers\[5\] \(Linear\) gets inputs of shape \(9,\) but needs \(3,"):
        check_shapes(layers, (2, 16), 1, "regression")
    layers[-1] = linear(9, 1)
    assert check_shapes(layers, (2, 16), 1, "regression") == [(3, 14), (3, 14), (3, 7), (3, 3), (9,), (1,)]
    with pytest.raises(ConfigError, match=r"gives outputs of shape \(1,\) per example, but the data set needs \(2,\) "
                                          r"\(2 regression targets\)"):
        check_shapes(layers, (2, 16), 2, "regression")
    with pytest.raises(ConfigError, match=r"model\.layers\[2\] \(MaxPool1d\) gets inputs of shape \(3, 1\) but needs "
                                          r"at least \(3, 2\)"):
        check_shapes(layers, (2, 3), 1, "regression")


def test_checking_shapes_leaves_the_global_generator_alone():
    dg.manual_seed(7)
    before = dg_random.get_rng_state()
    check_shapes(mlp_layers((1, 8, 8), 10, [64], dropout=0.5), (1, 8, 8), 10)
    assert dg_random.get_rng_state() == before


def test_named_architectures_go_through_the_shape_check(monkeypatch):
    seen = []

    def spy(layers, input_shape, num_outputs, task):
        seen.append((layers[0]["type"], tuple(input_shape), num_outputs, task))
        return check_shapes(layers, input_shape, num_outputs, task)

    monkeypatch.setattr(builders, "check_shapes", spy)
    for model in ("mlp", "cnn"):
        cfg = check_config({"model": {"name": model}})
        resolve(cfg, load_data(cfg))
    assert seen == [("Flatten", (1, 8, 8), 10, "classification"), ("Conv2d", (1, 8, 8), 10, "classification")]


@pytest.mark.skipif("Pointwise" not in LAYER_TYPES or not hasattr(nn, "Pointwise"), reason="no Pointwise layer")
def test_a_layer_without_rules_is_checked_by_the_trial_forward():
    good = [FLAT, linear(64, 16), {"type": "Pointwise", "activation": "tanh", "num_features": 16}, linear(16, 10)]
    assert check_shapes(good, (1, 8, 8), 10)[2] == (16,)
    good[2]["num_features"] = 32
    with pytest.raises(ConfigError, match=r"^model\.layers\[2\] \(Pointwise\) cannot take inputs of shape \(16,\): "):
        check_shapes(good, (1, 8, 8), 10)


def test_batch_norm_eps_that_vanishes_in_float32_is_refused():
    layers = [FLAT, linear(64, 32), {"type": "BatchNorm1d", "num_features": 32, "eps": 1e-300}, linear(32, 10)]
    with pytest.raises(ConfigError, match=r"model\.layers\[2\] \(BatchNorm1d\): eps = 1e-300, which underflows to 0 "
                                          r"in float32"):
        check_shapes(layers, (1, 8, 8), 10)


# -- 2. the NaN guard names what went non-finite first ---------------------------------------------------------
def trainer_for(cfg, change_data=None):
    cfg = check_config(cfg)
    data = load_data(cfg)
    resolve(cfg, data)
    if change_data:
        data.train = TensorDataset(*change_data(*data.train.arrays))
    return Trainer(cfg, data, quiet=True)


def diverge(trainer):
    with pytest.raises(DivergenceError) as e:
        trainer.fit()
    return str(e.value)


def test_non_finite_inputs_are_named_and_the_learning_rate_is_not_blamed():
    def poison(x, y):
        x = x.copy()
        x[3, 1] = np.nan
        return x, y

    msg = diverge(trainer_for({"data": {"dataset": "iris"}, "train": {"epochs": 1}}, poison))
    assert re.fullmatch(r"training diverged: the loss is nan at epoch 1, step \d+ \(step \d+ of the run\); nothing "
                        r"was saved\. First non-finite: the input batch \(1 NaN or infinite value among 128\); the "
                        r"data are at fault, not the learning rate: .*data\.std\)", msg), msg
    assert "--lr" not in msg


def test_non_finite_regression_targets_are_named():
    def poison(x, y):
        y = y.copy()
        y[0, 0] = np.inf
        return x, y

    msg = diverge(trainer_for({"data": {"dataset": "sine"}, "train": {"epochs": 1, "batch_size": 1000}}, poison))
    assert "First non-finite: the batch's targets (1 NaN or infinite value among" in msg and "--lr" not in msg


def test_an_overflowing_loss_at_the_first_step_blames_the_data_scale():
    def huge(x, y):
        return x, y * np.float32(1e30)

    msg = diverge(trainer_for({"data": {"dataset": "sine"}, "train": {"epochs": 1}}, huge))
    assert "the loss is inf at epoch 1, step 1 (step 1 of the run)" in msg
    assert "First non-finite: the loss itself, from finite inputs and the initial weights" in msg
    assert "normalize the inputs" in msg and "--lr" not in msg


def test_an_overflowing_loss_after_growing_weights_blames_the_learning_rate():
    msg = diverge(trainer_for({"data": {"dataset": "sine"}, "optimizer": {"lr": 1e6}, "train": {"epochs": 2}}))
    assert re.search(r"First non-finite: the loss itself, from finite inputs and weights \(largest \|input\| [\d.]+, "
                     r"largest \|weight\| [\d.e+]+\): the forward pass overflowed as the weights grew\. Try a smaller "
                     r"--lr \(optimizer\.lr\) or train\.clip_grad_norm$", msg), msg


def test_a_weight_made_non_finite_by_the_update_is_named():
    msg = diverge(trainer_for({"data": {"dataset": "sine"}, "optimizer": {"name": "adam", "lr": 3e38},
                               "train": {"epochs": 1}}))
    assert re.search(r"step 2 \(step 2 of the run\); nothing was saved\. First non-finite: 0\.weight, already before "
                     r"this step \(the update before it overflowed float32\)\. Try a smaller --lr", msg), msg


def test_a_non_finite_gradient_from_a_finite_loss_is_named():
    t = trainer_for({"model": {"hidden": [16]}, "train": {"epochs": 1}})
    t.model[3].weight.register_hook(lambda g: g * np.float32(np.inf))
    msg = diverge(t)
    assert re.search(r"training diverged: a gradient is not finite at epoch 1, step 1 .* First non-finite: the "
                     r"gradient of 3\.weight, from a finite loss, inputs and initial weights .*: the backward pass "
                     r"overflowed\. The data's scale", msg), msg


def test_a_gradient_norm_that_overflows_from_finite_gradients_is_named():
    model = nn.Linear(2, 1)
    for p in model.parameters():
        p.grad = dg.ones(*p.shape)
    x, y = dg.zeros(4, 2), dg.zeros(4, 1)
    msg = divergence.explain(model, x, y, first_step=False, params=list(model.parameters()))
    assert msg.startswith("First non-finite: the gradient norm, although every gradient is finite")


def test_healthy_steps_never_look_for_a_cause(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("explain() ran on a healthy step")

    monkeypatch.setattr(divergence, "explain", fail)
    trainer_for({"model": {"hidden": [16]}, "train": {"epochs": 1}}).fit()


# -- 3. settings that make inputs non-finite or vanish in float32 ----------------------------------------------
@pytest.mark.parametrize("text, pattern", [
    ('[data]\ndataset = "iris"\nmean = [0, 0, 0, 0]\nstd = [1, 0, 1, 1]\n',
     r"data\.std in .*c\.toml holds 0 \(feature 1\), which is not > 0: inputs are divided by the std.*leave "
     r"data\.mean and data\.std out and deltagrad gives it std 1\)"),
    ('[data]\nmean = 0.5\nstd = 0.0\n', r"data\.std in .*c\.toml holds 0, which is not > 0"),
    ('[data]\nmean = 0.5\nstd = 1e-300\n',
     r"data\.std in .*c\.toml holds 1e-300, which underflows to 0 in float32 .*smallest allowed value is "
     r"1\.1754944e-38"),
    ('[data]\nmean = 0.5\n', r"data\.mean in .*c\.toml is given without data\.std"),
    ('[data]\nmean = nan\nstd = 1.0\n', r"data\.mean in .*c\.toml must be a finite number"),
    ('[data]\ndataset = "iris"\nmean = [0, 0, 0, 0]\nstd = [1, 1]\n', r"data\.std in .*c\.toml has 2 values but "
                                                                      r"data\.mean has 4"),
    ('[optimizer]\nname = "adam"\neps = 1e-300\n',
     r"^deltagrad: error: optimizer\.eps in .*c\.toml is 1e-300, which underflows to 0 in float32 \(the model's "
     r"dtype\); the smallest allowed value is 1\.1754944e-38$"),
    ('[optimizer]\nname = "adamw"\neps = 1e-40\n', r"optimizer\.eps in .*c\.toml is 1e-40, which is subnormal in "
                                                   r"float32"),
    ('[optimizer]\nname = "rmsprop"\neps = 1e-300\n', r"optimizer\.eps in .*c\.toml is 1e-300, which underflows"),
    ('[optimizer]\nname = "adagrad"\neps = 1e-300\n', r"optimizer\.eps in .*c\.toml is 1e-300, which underflows"),
    ('[optimizer]\nlr = 1e39\n', r"optimizer\.lr in .*c\.toml is 1e\+39, which overflows to infinity in float32 .*"
                                 r"largest allowed value is 3\.4028235e\+38"),
    ('[optimizer]\nweight_decay = 1e-60\n', r"optimizer\.weight_decay in .*c\.toml is 1e-60, which underflows"),
    ('[train]\nclip_grad_norm = 1e-50\n', r"train\.clip_grad_norm in .*c\.toml is 1e-50, which underflows"),
])
def test_settings_that_break_the_numbers_are_refused_naming_where_they_came_from(tmp_path, capsys, text, pattern):
    cfg = write_toml(tmp_path / "c.toml", text)
    one_line_error(capsys, ["train", "--config", cfg, "--out", tmp_path / "r", "--quiet"], pattern)
    assert not (tmp_path / "r").exists()


def test_a_learning_rate_that_is_zero_in_float32_names_the_flag(tmp_path, capsys):
    one_line_error(capsys, ["train", "--lr", "1e-50", "--out", tmp_path / "r", "--quiet"],
                   r"^deltagrad: error: --lr is 1e-50, which underflows to 0 in float32 \(the model's dtype\); the "
                   r"smallest allowed value is 1\.1754944e-38$")


def test_the_range_follows_the_model_dtype():
    assert out_of_range(1e-300) is not None and out_of_range(1e-300, np.float64) is None
    assert out_of_range(1e-320, np.float64).startswith("is subnormal in float64")
    assert out_of_range(1e-8) is None and out_of_range(3e38) is None
    assert model_dtype({"name": "mlp"}) == np.float32
    wide = [{"type": "Linear", "in_features": 2, "out_features": 1, "dtype": "float64"}]
    assert model_dtype({"layers": wide}) == np.float64
    assert model_dtype({"layers": wide + [{"type": "BatchNorm1d", "num_features": 1, "dtype": "float32"}]}) == \
        np.float32
    cfg = check_config({"model": {"layers": wide}, "optimizer": {"name": "adam", "eps": 1e-300}})
    assert cfg["optimizer"]["eps"] == 1e-300


def test_a_constant_feature_is_centred_and_gets_std_one(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    table = np.column_stack([x[:, 0], np.full(60, 3.0), x[:, 1], (x[:, 0] > 0).astype(int)])
    p = tmp_path / "const.csv"
    np.savetxt(p, table, delimiter=",", header="a,c,b,y", comments="", fmt="%.6g")
    d = load_dataset(str(p))
    assert d.std[1] == 1.0 and d.mean[1] == pytest.approx(3.0)
    assert np.all(d.train.arrays[0][:, 1] == 0) and np.isfinite(d.train.arrays[0]).all()
    result = train_run({"data": {"dataset": str(p)}, "train": {"epochs": 2}}, out=tmp_path / "r", quiet=True)
    assert np.isfinite(result["train_loss"])
    mean, std = fit_normalization(np.full((5, 1, 2, 2), 0.25, np.float32), images=True)
    assert (mean, std) == (0.25, 1.0)


def test_the_library_refuses_a_std_that_makes_inputs_non_finite():
    with pytest.raises(DataError, match=r"std 0 of feature 2 \(in float32\) is not a positive number"):
        load_dataset("iris", mean=[0, 0, 0, 0], std=[1, 1, 0, 1])
    with pytest.raises(DataError, match=r"iris: \d+ training inputs are not finite after normalizing them"):
        load_dataset("iris", mean=[0, 0, 0, 0], std=[1e-38] * 4)


# -- 4. data sets too small for the fixed split ------------------------------------------------------------------
@pytest.fixture()
def tiny_csv(tmp_path):
    def make(rows):
        p = tmp_path / f"t{rows}.csv"
        p.write_text("a,b,y\n" + "".join(f"{i},{i % 2 + 0.5 * i},{i % 2}\n" for i in range(rows)))
        return p
    return make


def test_three_rows_train_with_a_warning_and_no_nan(tmp_path, capsys, tiny_csv):
    data = tiny_csv(3)
    code, out, err = run_main(capsys, "train", "--dataset", data, "--epochs", "2", "--out", tmp_path / "r", "--json")
    assert code == 0, err
    assert ("warning: data set '" + str(data) + "' has no validation examples (3 examples: 2 train / 0 validation / "
            "1 test; the fixed split sets aside 10% for validation and 20% for test, rounded): the validation loss "
            "is not measured") in out
    assert "no test examples" not in out and "nan" not in out.lower()
    assert re.search(r"epoch 2/2  train loss [\d.]+ acc [\d. ]+%  no validation examples  lr", out)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["val_loss"] is None and result["val_accuracy"] is None
    assert result["test_examples"] == 1 and isinstance(result["test_loss"], float)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["val_loss"] is None and "nan" not in (tmp_path / "r" / "metrics.json").read_text()


def test_one_row_trains_and_every_report_says_no_examples(tmp_path, capsys, tiny_csv):
    data, run = tiny_csv(1), tmp_path / "r"
    code, out, err = run_main(capsys, "train", "--dataset", data, "--epochs", "1", "--out", run)
    assert code == 0, err
    assert "has no validation examples (1 example: 1 train / 0 validation / 0 test" in out
    assert "has no test examples (1 example: 1 train / 0 validation / 0 test" in out
    assert "no test examples, so no test loss; run saved in" in out and "nan" not in out.lower()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_loss"] is None and metrics["test_accuracy"] is None and metrics["test_examples"] == 0
    code, out, _ = run_main(capsys, "eval", run, "--json")
    assert code == 0 and json.loads(out.splitlines()[-1]) == {
        "test_loss": None, "test_accuracy": None, "test_examples": 0, "dataset": str(data), "run": str(run)}
    code, out, _ = run_main(capsys, "eval", run, "--split", "val")
    assert code == 0 and out.strip() == f"val loss n/a (no examples)  (0 examples of {data})"
    code, out, _ = run_main(capsys, "info", run)
    assert code == 0 and "val loss n/a (no examples)" in out and "nan" not in out.lower()
    code, out, _ = run_main(capsys, "train", "--dataset", data, "--epochs", "1", "--out", tmp_path / "q", "--quiet")
    assert code == 0 and out.startswith("test loss n/a (no examples) (0 examples)")


@pytest.mark.parametrize("extra, pattern", [
    ({"train": {"patience": 3}}, r"train\.patience \(early stopping\) watches the validation loss, but data set .* "
                                 r"has no validation examples \(3 examples: 2 train / 0 validation / 1 test\)"),
    ({"scheduler": {"name": "plateau"}}, r"scheduler\.name = 'plateau' watches the validation loss, but data set"),
    ({"model": {"batch_norm": True}, "train": {"batch_size": 1}},
     r"model\.layers\[1\] \(BatchNorm1d\) needs at least 2 examples per batch to normalize over, but "
     r"train\.batch_size \(--batch-size\) is 1"),
])
def test_what_a_tiny_data_set_cannot_serve_is_refused_before_the_folder(tmp_path, tiny_csv, extra, pattern):
    doc = {"data": {"dataset": str(tiny_csv(3))}, **extra}
    with pytest.raises(ConfigError, match=pattern):
        train_run(doc, out=tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()


def test_batch_norm_needs_two_training_examples(tmp_path, tiny_csv):
    with pytest.raises(ConfigError, match=r"needs at least 2 examples per batch to normalize over, but data set .* "
                                          r"has 1 training example \(1 example: 1 train"):
        train_run({"data": {"dataset": str(tiny_csv(1))}, "model": {"batch_norm": True}}, out=tmp_path / "r",
                  quiet=True)
    # on images a channel has several values per example: one example per batch is enough
    cfg = check_config({"model": {"layers": [conv(1, 2, 3), {"type": "BatchNorm2d", "num_features": 2}, FLAT,
                                             linear(72, 10)]}, "train": {"batch_size": 1}})
    resolve(cfg, load_data(cfg))


def test_an_empty_training_split_is_an_error_and_empty_parts_evaluate_to_none():
    with pytest.raises(DataError, match=r"a data set of 0 examples is too small .*leaves no training examples"):
        split_indices(0)
    assert [len(p) for p in split_indices(1)] == [1, 0, 0] and [len(p) for p in split_indices(3)] == [2, 0, 1]
    t = trainer_for({"data": {"dataset": "iris"}, "train": {"epochs": 1}})
    assert t.evaluate(TensorDataset(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))) == (None, None)
