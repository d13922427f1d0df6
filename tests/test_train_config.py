"""Run configs: the TOML writer round-trips, defaults are filled, bad settings are named with their source."""

from __future__ import annotations

import math

import pytest

from deltagrad.train import toml_io
from deltagrad.train.config import DEFAULTS, check_config
from deltagrad.train.errors import ConfigError
from deltagrad.train.models import cnn_layers, mlp_layers


def test_toml_round_trip_of_a_config_like_document():
    doc = {
        "title": 'quotes " and \\ and\nnewline and ünïcode and \x7f',
        "n": -3, "x": 0.1, "tiny": 1e-300, "big": 1e300, "flag": False,
        "inf": math.inf, "ninf": -math.inf,
        "data": {"dataset": "digits", "mean": 0.305171123559221, "input_shape": [1, 8, 8],
                 "classes": ["setosa", "versicolor"], "nested": {"deeper": {"k": 1}}},
        "model": {"name": "mlp", "layers": [{"type": "Flatten"},
                                            {"type": "Linear", "in_features": 64, "out_features": 10},
                                            {"type": "Dropout", "p": 0.3}]},
        "empty": {},
        "odd key": {"a.b": 1, "": 2},
        "lists": {"nested": [[1, 2], [3]], "empty": []},
    }
    text = toml_io.dumps(doc, header="a header\n\nsecond line")
    assert text.startswith("# a header\n#\n# second line\n")
    back = toml_io.loads(text)
    assert back == doc
    assert toml_io.loads(toml_io.dumps(back)) == doc


def test_toml_writer_keeps_floats_exact_and_drops_none():
    values = [0.1, 1 / 3, 2.5e-8, 123456789.125, -0.0, 5e-324]
    back = toml_io.loads(toml_io.dumps({"v": values, "none": None, "t": {"a": None, "b": 1}}))
    assert back["v"] == values and "none" not in back and back["t"] == {"b": 1}
    assert math.isnan(toml_io.loads(toml_io.dumps({"n": math.nan}))["n"])


def test_broken_toml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[train]\nepochs = 3\nlr = = 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML: .*line 3"):
        toml_io.load(p)
    with pytest.raises(ConfigError, match=r"missing\.toml: no such config file"):
        toml_io.load(tmp_path / "missing.toml")


def test_defaults_are_filled_per_choice():
    cfg = check_config({})
    assert cfg["data"]["dataset"] == "digits" and cfg["model"]["name"] == "mlp"
    assert cfg["optimizer"] == {"name": "sgd", "lr": 0.05, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0,
                                "nesterov": False}
    assert cfg["scheduler"] == {"name": "step", "step_size": 10, "gamma": 0.3}
    assert cfg["train"] == DEFAULTS["train"]
    adam = check_config({"optimizer": {"name": "adam"}})["optimizer"]
    assert adam["lr"] == 1e-3 and adam["betas"] == [0.9, 0.999]
    cnn = check_config({"model": {"name": "cnn", "channels": [8]}})["model"]
    assert cnn["channels"] == [8] and cnn["kernel_size"] == 3
    assert check_config({"scheduler": {"name": "cosine"}, "train": {"epochs": 7}})["scheduler"]["T_max"] == 7


@pytest.mark.parametrize("doc, flag, message", [
    ({"optimizer": {"lr": math.nan}}, "--lr", "--lr must be a finite number > 0, got nan"),
    ({"optimizer": {"lr": 0.0}}, "--lr", "--lr must be a finite number > 0, got 0.0"),
    ({"optimizer": {"lr": -1.0}}, "--lr", "--lr must be a finite number > 0, got -1.0"),
    ({"optimizer": {"lr": math.inf}}, "--lr", "--lr must be a finite number > 0, got inf"),
    ({"train": {"batch_size": 0}}, "--batch-size", "--batch-size must be a whole number >= 1, got 0"),
    ({"train": {"epochs": -2}}, "--epochs", "--epochs must be a whole number >= 0, got -2"),
    ({"train": {"seed": -1}}, "--seed", "--seed must be a whole number >= 0, got -1"),
])
def test_bad_numbers_name_the_flag(doc, flag, message):
    path = {"--lr": "optimizer.lr", "--batch-size": "train.batch_size", "--epochs": "train.epochs",
            "--seed": "train.seed"}[flag]
    with pytest.raises(ConfigError) as e:
        check_config(doc, {path: flag})
    assert str(e.value) == message


def test_bad_settings_from_a_file_name_the_file():
    with pytest.raises(ConfigError, match=r"^train.batch_size in my\.toml must be a whole number >= 1, got 'x'$"):
        check_config({"train": {"batch_size": "x"}}, {"train.batch_size": "my.toml"})
    with pytest.raises(ConfigError, match=r"optimizer.momentun in c\.toml: unknown setting for optimizer 'sgd'"):
        check_config({"optimizer": {"momentun": 0.9}}, {"optimizer.momentun": "c.toml"})
    with pytest.raises(ConfigError, match=r"unknown config section \[trian\] in c\.toml"):
        check_config({"trian": {}}, {"__file__": "c.toml"})
    with pytest.raises(ConfigError, match="optimizer.momentum: unknown setting for optimizer 'adam'"):
        check_config({"optimizer": {"name": "adam", "momentum": 0.9}})
    with pytest.raises(ConfigError, match="model.name must be one of mlp, cnn, custom, got 'resnet'"):
        check_config({"model": {"name": "resnet"}})
    with pytest.raises(ConfigError, match=r"model.dropout must be a number in \[0, 1\), got 1.5"):
        check_config({"model": {"dropout": 1.5}})
    with pytest.raises(ConfigError, match="Nesterov momentum needs momentum > 0"):
        check_config({"optimizer": {"nesterov": True, "momentum": 0.0}})
    with pytest.raises(ConfigError, match="must be true or false"):
        check_config({"data": {"normalize": 1}})


def test_layer_list_alone_is_a_custom_model():
    layers = [{"type": "Linear", "in_features": 4, "out_features": 3}]
    cfg = check_config({"model": {"layers": layers}})
    assert cfg["model"]["name"] == "custom" and cfg["model"]["layers"] == layers
    with pytest.raises(ConfigError, match="custom model needs a layer list"):
        check_config({"model": {"name": "custom"}})


def test_named_architectures_as_layer_lists():
    mlp = mlp_layers((1, 8, 8), 10, [256])
    assert [s["type"] for s in mlp] == ["Flatten", "Linear", "ReLU", "Linear"]
    assert mlp[1] == {"type": "Linear", "in_features": 64, "out_features": 256}
    assert mlp_layers((4,), 3, [], "tanh") == [{"type": "Linear", "in_features": 4, "out_features": 3}]
    cnn = cnn_layers((1, 8, 8), 10, [32, 64], 3, [128], "relu", 0.3)
    assert [s["type"] for s in cnn] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
                                        "Dropout", "Linear", "ReLU", "Linear"]
    assert cnn[8]["in_features"] == 64 * 2 * 2
    with pytest.raises(ConfigError, match=r"model 'cnn' needs images .* shape \(4,\)"):
        cnn_layers((4,), 3, [8])
