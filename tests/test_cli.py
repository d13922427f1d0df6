"""The ``deltagrad`` command: train/eval/predict/info, --help, and one-line user errors (exit 2, no traceback,
nothing saved is lost)."""

from __future__ import annotations

import gzip
import json
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from deltagrad.cli.main import main
from run_files import current, resign

SMALL = ["--epochs", "1", "--batch-size", "128", "--quiet"]


def run_main(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, argv, pattern):
    code, out, err = run_main(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(("deltagrad: error: ", "deltagrad train: error: ")), err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *SMALL, "--out", str(run)]) == 0
    return run


def snapshot(folder):
    """Every file of a folder (the lock, which only names its last holder, aside)."""
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def copy_run(run, to):
    shutil.copytree(run, to)
    return to


# -- the happy paths ----------------------------------------------------------------------------------------------
def test_train_json_eval_info_predict(tmp_path, capsys):
    run = tmp_path / "r"
    code, out, _ = run_main(capsys, "train", *SMALL, "--out", run, "--json", "--seed", "3")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert 0.5 < result["test_accuracy"] <= 1 and result["epochs"] == 1
    code, out, _ = run_main(capsys, "eval", run, "--json")
    ev = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and ev["test_accuracy"] == result["test_accuracy"] and ev["test_loss"] == result["test_loss"]
    code, out, _ = run_main(capsys, "eval", run, "--split", "val")
    assert code == 0 and out.startswith("val loss ")
    code, out, _ = run_main(capsys, "info", run)
    assert code == 0 and "mlp" in out and "1/1 epochs" in out and "grad norms  1.Linear" in out
    code, out, _ = run_main(capsys, "info", run, "--json")
    assert json.loads(out)["config"]["train"]["seed"] == 3
    code, out, _ = run_main(capsys, "predict", run)
    rows = out.strip().splitlines()
    assert code == 0 and rows[0] == "index,prediction,confidence,target" and len(rows) == 360
    assert np.mean([r.split(",")[1] == r.split(",")[3] for r in rows[1:]]) == pytest.approx(
        result["test_accuracy"])


def test_predict_from_files(tmp_path, capsys, trained):
    x = np.random.default_rng(0).integers(0, 17, (5, 64)).astype(np.float32) / 16
    np.save(tmp_path / "x.npy", x)
    code, out, _ = run_main(capsys, "predict", trained, "--input", tmp_path / "x.npy", "--output",
                            tmp_path / "p.csv")
    assert code == 0 and "wrote 5 predictions" in out
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 6
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    code, out, _ = run_main(capsys, "predict", trained, "--input", tmp_path / "x.csv")
    assert code == 0 and out.splitlines()[0] == "index,prediction,confidence" and len(out.splitlines()) == 6
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert_user_error(capsys, ["predict", trained, "--input", tmp_path / "obj.npy"],
                      r"obj\.npy: cannot read as a \.npy array .*pickles\) are refused")
    np.save(tmp_path / "bad.npy", np.zeros((2, 7), np.float32))
    assert_user_error(capsys, ["predict", trained, "--input", tmp_path / "bad.npy"],
                      r"inputs of shape \(7,\) do not fit the model, which takes \(1, 8, 8\)")


def test_config_file_and_flags_override_it(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\nhidden = [16]\n\n[train]\nepochs = 1\nbatch_size = 256\nseed = 5\n')
    code, out, _ = run_main(capsys, "train", "--config", cfg, "--seed", "7", "--out", tmp_path / "r", "--quiet")
    assert code == 0 and out.startswith("test loss ")
    saved = (tmp_path / "r" / "config.toml").read_text()
    assert "hidden = [16]" in saved and "seed = 7" in saved and "batch_size = 256" in saved


@pytest.mark.parametrize("argv", [[], ["train"], ["eval"], ["predict"], ["info"]])
def test_help_everywhere_with_examples(capsys, argv):
    code, out, _ = run_main(capsys, *argv, "--help")
    assert code == 0 and "examples:" in out and "usage: deltagrad" in out


def test_zero_epochs_saves_the_initial_model(tmp_path, capsys):
    code, out, _ = run_main(capsys, "train", "--epochs", "0", "--out", tmp_path / "r", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["epochs"] == 0
    code, out, _ = run_main(capsys, "eval", tmp_path / "r")
    assert code == 0 and out.startswith("test loss")
    code, out, _ = run_main(capsys, "train", "--resume", tmp_path / "r", "--epochs", "1", "--quiet")
    assert code == 0 and json.loads(current(tmp_path / "r", "state.json").read_text())["epoch"] == 1


def test_no_command_prints_help(capsys):
    code, _, err = run_main(capsys)
    assert code == 2 and "usage: deltagrad" in err


def test_python_dash_m_runs_a_real_training(tmp_path):
    run = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "deltagrad", "train", *SMALL, "--out", str(run), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["test_accuracy"] > 0.5
    assert current(run, "model.safetensors").exists()
    proc = subprocess.run([sys.executable, "-m", "deltagrad", "train", "--lr", "nan"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr == "deltagrad: error: --lr must be a finite number > 0, got nan\n"


# -- user errors: one line, exit 2, nothing lost ------------------------------------------------------------------
@pytest.mark.parametrize("argv, pattern", [
    (["train", "--lr", "nan"], r"--lr must be a finite number > 0, got nan"),
    (["train", "--lr", "0"], r"--lr must be a finite number > 0, got 0.0"),
    (["train", "--lr", "-0.1"], r"--lr must be a finite number > 0, got -0.1"),
    (["train", "--batch-size", "0"], r"--batch-size must be a whole number >= 1, got 0"),
    (["train", "--epochs", "-3"], r"--epochs must be a whole number >= 0, got -3"),
    (["train", "--epochs", "two"], r"argument --epochs: invalid int value: 'two'"),
    (["train", "--dataset", "mnits"], r"unknown data set 'mnits'; built-in data sets: digits"),
    (["train", "--dataset", "missing.csv"], r"missing\.csv: no such file"),
    (["train", "--config", "missing.toml"], r"missing\.toml: no such config file"),
    (["train", "--model", "cnn", "--dataset", "iris"], r"model 'cnn' needs images"),
    (["train", "--target", "label"], r"data.target \(--target\) applies to CSV files only"),
    (["eval", "no/such/run"], r"no/such/run: no such run folder"),
    (["info", "no/such/run"], r"no/such/run: no such run folder"),
])
def test_bad_arguments(capsys, argv, pattern):
    assert_user_error(capsys, argv, pattern)


def test_ragged_and_non_numeric_csv_name_the_line(tmp_path, capsys):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n3,4,1\n5,6\n")
    assert_user_error(capsys, ["train", "--dataset", p], r"d\.csv, line 4: 2 values, expected 3 as on line 1")
    p.write_text("a,b,y\n1,2,0\n3,x4,1\n")
    assert_user_error(capsys, ["train", "--dataset", p], r"d\.csv, line 3, column 'b': 'x4' is not a number")
    p.write_text("a,b,y\n1,2,0\n3,4,1\n")
    assert_user_error(capsys, ["train", "--dataset", p, "--target", "q"], r"d\.csv: no column 'q' \(columns: a, b, y\)")


def test_bad_idx_files_name_the_file_and_sizes(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (4, 5, 5)) + bytes(100)
    labels = bytes([0, 0, 8, 1]) + (4).to_bytes(4, "big") + bytes([1, 2, 3, 4])
    for part in ("train", "t10k"):
        (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (folder / f"{part}-labels-idx1-ubyte").write_bytes(labels)
    assert main(["train", "--dataset", str(folder), "--epochs", "0", "--out", str(tmp_path / "ok"), "--quiet"]) == 0
    capsys.readouterr()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(images[:16])
    assert_user_error(capsys, ["train", "--dataset", folder],
                      r"t10k-labels-idx1-ubyte: wrong magic number 0x00000803, expected 0x00000801")
    (folder / "t10k-labels-idx1-ubyte").write_bytes(labels[:-1])
    assert_user_error(capsys, ["train", "--dataset", folder],
                      r"t10k-labels-idx1-ubyte: truncated IDX file: expected 12 bytes for shape \(4,\), found 11")


def test_broken_toml_names_file_and_line(tmp_path, capsys):
    p = tmp_path / "broken.toml"
    p.write_text("[train]\nepochs = 3\nbatch_size = \n")
    assert_user_error(capsys, ["train", "--config", p], r"broken\.toml: invalid TOML: .*line 3")
    p.write_text("[train]\nepochz = 3\n")
    assert_user_error(capsys, ["train", "--config", p], r"train\.epochz in .*broken\.toml: unknown setting")


def test_bad_checkpoints(tmp_path, capsys, trained):
    run = copy_run(trained, tmp_path / "copy")
    model = current(run, "model.safetensors")
    good = model.read_bytes()
    model.unlink()
    assert_user_error(capsys, ["eval", run], r"model\.safetensors: no such file")
    model.write_bytes(good[:200])
    assert_user_error(capsys, ["eval", run], r"model\.safetensors: 200 bytes, but the checkpoint recorded")
    flipped = bytearray(good)
    flipped[-5] ^= 0x10  # one bit of one weight
    model.write_bytes(bytes(flipped))
    assert_user_error(capsys, ["eval", run], r"model\.safetensors: checksum mismatch")
    # behind the checksum, what a file damaged together with its record meets:
    for data, pattern in [(good[:200], r"truncated"), (b"\x00" * 3, r"truncated"),
                          (b'{"a": 1, "this is": "json, not safetensors"}', r"not a safetensors file"),
                          (bytes(flipped), r"checksum mismatch: the tensor data is not what was saved")]:
        model.write_bytes(data)
        resign(run)
        assert_user_error(capsys, ["eval", run], r"model\.safetensors: " + pattern)
    from deltagrad import io as dio
    dio.save({"0.weight": np.zeros((3, 3), np.float32)}, model)
    resign(run)
    assert_user_error(capsys, ["eval", run], r"model\.safetensors: does not match the model in config\.toml")
    assert_user_error(capsys, ["train", "--resume", run, "--epochs", "2"],
                      r"model\.safetensors: does not match the model in config\.toml")


class Boom:
    """Unpickling this would create a file: the test checks that it never happens."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_is_refused_never_executed(tmp_path, capsys, trained):
    run = copy_run(trained, tmp_path / "copy")
    marker = tmp_path / "pwned"
    good = current(run, "model.safetensors").read_bytes()
    current(run, "model.safetensors").write_bytes(pickle.dumps(Boom(str(marker))))
    resign(run)
    assert_user_error(capsys, ["eval", run], r"model\.safetensors: .*pickle.*refused")
    assert_user_error(capsys, ["train", "--resume", run, "--epochs", "2"], r"model\.safetensors: .*pickle")
    assert not marker.exists()
    current(run, "model.safetensors").write_bytes(good)
    current(run, "optimizer.safetensors").write_bytes(pickle.dumps(Boom(str(marker)), protocol=2))
    resign(run)
    assert_user_error(capsys, ["train", "--resume", run, "--epochs", "2"], r"optimizer\.safetensors: .*pickle")
    assert not marker.exists()


def test_training_into_an_existing_run_loses_nothing(tmp_path, capsys, trained):
    before = snapshot(trained)
    assert_user_error(capsys, ["train", "--out", trained, *SMALL], r"already holds a run; continue it with --resume")
    assert_user_error(capsys, ["train", "--resume", trained, "--lr", "0.1"], r"only --epochs may be given")
    assert_user_error(capsys, ["train", "--resume", trained, "--epochs", "-1"], r"--epochs must be a whole number")
    assert snapshot(trained) == before


def test_divergence_names_the_step_and_writes_no_nonfinite_weights(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[optimizer]\nmomentum = 0.0\n\n[scheduler]\nname = "exponential"\ngamma = 1e6\n\n'
                   '[model]\nhidden = [32]\n')
    run = tmp_path / "r"
    line = assert_user_error(capsys, ["train", "--config", cfg, "--lr", "0.01", "--epochs", "8", "--out", run],
                             r"training diverged: .* at epoch \d+, step \d+ \(step \d+ of the run\)")
    assert "checkpoint of epoch" in line
    from deltagrad import io as dio
    assert all(np.isfinite(t.data).all() for t in dio.load(current(run, "model.safetensors")).values())
    # the kept checkpoint still evaluates
    code, out, _ = run_main(capsys, "eval", run, "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["test_accuracy"] > 0


def test_out_dir_that_cannot_be_a_folder_is_a_user_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_user_error(capsys, ["train", *SMALL, "--out", blocker], r"file: exists and is not a folder")
    assert_user_error(capsys, ["train", *SMALL, "--out", blocker / "run"], r"cannot create the run folder")
    assert blocker.read_text() == "x"
