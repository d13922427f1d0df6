"""A run survives what happens to real runs: a kill at any step of writing a checkpoint, two processes on one
run folder, a full disk, and files edited or damaged after they were written. After each, the folder holds one
complete checkpoint that eval, info and --resume agree on, and resuming gives the uninterrupted run bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from deltagrad import io as dio
from deltagrad.cli.main import main
from deltagrad.train import CheckpointError, evaluate_run, run_info, train_run
from deltagrad.train import run as R
from run_files import current, edit_state, resign

# a small run: iris, a 4-16-3 MLP with Adam and a plateau schedule (every kind of state in a checkpoint)
CFG = {"data": {"dataset": "iris"}, "model": {"hidden": [16]}, "optimizer": {"name": "adam", "lr": 0.01},
       "scheduler": {"name": "plateau", "patience": 1}, "train": {"epochs": 2, "batch_size": 16}}
FINAL_EPOCHS = 3


def cfg(epochs):
    return {**CFG, "train": {**CFG["train"], "epochs": epochs}}


def files(run):
    """Every file of the run's current checkpoint (by name) and its epoch."""
    ckpt = R.read_checkpoint(run)
    return ckpt.epoch, ckpt.files


def tensors(data):
    return {k: v.data for k, v in dio.loads(data).items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of FINAL_EPOCHS epochs, and a run of 1 epoch to interrupt copies of."""
    root = tmp_path_factory.mktemp("faults")
    train_run(cfg(FINAL_EPOCHS), out=root / "straight", quiet=True)
    train_run(cfg(1), out=root / "one", quiet=True)
    return root


def assert_resumes_to_the_uninterrupted_run(run, reference):
    train_run(resume=run, epochs=FINAL_EPOCHS, quiet=True)
    _, got = files(run)
    _, want = files(reference / "straight")
    for name in (R.MODEL, R.OPTIMIZER):
        a, b = tensors(got[name]), tensors(want[name])
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    strip = [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "steps_per_second")}
             for line in got[R.METRICS_LINES].decode().splitlines()]
    assert strip == [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "steps_per_second")}
                     for line in want[R.METRICS_LINES].decode().splitlines()]


# -- a kill at every step of writing a checkpoint -------------------------------------------------------------------
# A forked child resumes the 1-epoch run to 2 epochs and kills itself (SIGKILL: no cleanup of any kind) at the
# k-th file-system call made while the checkpoint of epoch 2 is written; a write is cut in half first.
CALLS = ("open", "write", "fsync", "close", "replace", "rename", "mkdir", "unlink", "rmdir", "chmod", "ftruncate")


def run_child(kill_at, run):
    """Fork; in the child resume ``run`` with the kill armed; return (exit status or -signal, calls counted)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            calls, active = [0], [False]

            def wrap(name, f):
                def call(*args, **kwargs):
                    if active[0]:
                        if calls[0] == kill_at:
                            if name == "write":
                                f(args[0], bytes(args[1])[: max(1, len(args[1]) // 2)])
                            os.kill(os.getpid(), signal.SIGKILL)
                        calls[0] += 1
                    return f(*args, **kwargs)
                return call

            for name in CALLS:
                setattr(os, name, wrap(name, getattr(os, name)))
            write_checkpoint = R.write_checkpoint

            def counted(*args, **kwargs):
                active[0] = True
                try:
                    return write_checkpoint(*args, **kwargs)
                finally:
                    active[0] = False

            R.write_checkpoint = counted
            train_run(resume=run, epochs=2, quiet=True)
            os.write(write_end, str(calls[0]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as f:
        counted = f.read()
    return (-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)), counted


def test_a_kill_at_any_step_of_a_checkpoint_loses_nothing(tmp_path, reference):
    counting = shutil.copytree(reference / "one", tmp_path / "count")
    code, steps = run_child(-1, counting)
    assert code == 0 and int(steps) >= 20, "the checkpoint should be written in many small steps"
    outcomes = set()
    for k in range(int(steps)):
        run = shutil.copytree(reference / "one", tmp_path / f"kill{k}")
        code, _ = run_child(k, run)
        assert code == -signal.SIGKILL, k
        # one complete checkpoint, of epoch 1 or 2, on which eval, info and resume agree
        epoch, _ = files(run)
        outcomes.add(epoch)
        info = run_info(run)
        assert "checkpoint_error" not in info and info["epoch"] == epoch, (k, info.get("checkpoint_error"))
        assert evaluate_run(run)["test_examples"] > 0
        assert_resumes_to_the_uninterrupted_run(run, reference)
        shutil.rmtree(run)
    assert outcomes == {1, 2}  # killed before the commit: epoch 1 stays; after it: epoch 2 is current


def test_ctrl_c_while_saving_keeps_the_last_checkpoint(tmp_path, reference, monkeypatch):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    real = R._write_durably

    def interrupted(path, data):
        if path.name == R.STATE:
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(R, "_write_durably", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_run(resume=run, epochs=2, quiet=True)
    monkeypatch.undo()
    assert files(run)[0] == 1
    assert_resumes_to_the_uninterrupted_run(run, reference)


# -- one writer per run folder -----------------------------------------------------------------------------------
def test_two_processes_never_write_one_run(tmp_path, capsys):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "deltagrad", "train", "--epochs", "100000", "--out", str(run),
                              "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run / R.POINTER).exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.poll() else ""
            time.sleep(0.05)
        for argv in (["train", "--out", str(run), "--quiet"], ["train", "--resume", str(run), "--epochs", "3"]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"{run}: another deltagrad process is writing this run (pid {first.pid} " \
                                               "on " in err, err
        # readers need no lock: they see the current checkpoint, complete
        assert run_info(run)["epoch"] >= 0 and "checkpoint_error" not in run_info(run)
    finally:
        first.kill()
        first.wait()
    # the lock of a killed process does not block: the run resumes
    epoch = R.current_epoch(run)
    assert main(["train", "--resume", str(run), "--epochs", str(epoch + 1), "--quiet"]) == 0
    assert R.current_epoch(run) == epoch + 1


def test_the_same_out_twice_at_once_leaves_one_run(tmp_path):
    run = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "deltagrad", "train", "--epochs", "2", "--out", str(run),
                               "--quiet", "--dataset", "iris"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "another deltagrad process is writing this run" in refused or "already holds a run" in refused
    assert R.current_epoch(run) == 2 and evaluate_run(run)["test_examples"] > 0


# -- a full disk -----------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_with_one_line_and_keeps_the_last_checkpoint(tmp_path, small_disk, capsys):
    run = small_disk / "run"
    # 64-200-10 MLP with Adam: about 60 KB of weights and 120 KB of moments per checkpoint; two checkpoints
    # fit, the third (written before the oldest is removed) does not
    argv = ["train", "--out", str(run), "--epochs", "6", "--optimizer", "adam", "--quiet"]
    (small_disk / "config.toml").write_text("[model]\nhidden = [200]\n")
    assert main([*argv, "--config", str(small_disk / "config.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "is kept" in err, err
    epoch = R.current_epoch(run)
    assert epoch == 1 and "checkpoint_error" not in run_info(run)
    assert "cannot write the checkpoint of epoch 2 (No space left on device); the checkpoint of epoch 1 is kept" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-000000", "epoch-000001"]
    assert evaluate_run(run)["test_examples"] > 0
    # room again: the run resumes from the kept checkpoint
    moved = shutil.copytree(run, tmp_path / "moved")
    assert main(["train", "--resume", str(moved), "--epochs", str(epoch + 1), "--quiet"]) == 0
    assert R.current_epoch(moved) == epoch + 1


# -- never written over what is not the run's ------------------------------------------------------------------------
def test_out_refuses_a_folder_of_other_files_and_an_empty_path(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"not a run")
    assert main(["train", "--out", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds files that are not a deltagrad run (cat.jpg)" in err and err.count("\n") == 1
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "cat.jpg"]
    assert (folder / "cat.jpg").read_bytes() == b"not a run"
    for argv in (["train", "--out", ""], ["train", "--resume", ""], ["eval", ""], ["info", " "]):
        assert main(argv) == 2
        assert "is an empty path" in capsys.readouterr().err


def test_out_of_a_new_run_that_fails_early_leaves_no_folder(tmp_path, capsys):
    run = tmp_path / "new"
    assert main(["train", "--out", str(run), "--lr", "1", "--optimizer", "adam", "--quiet", "--epochs", "1",
                 "--dataset", "no-such.csv"]) == 2
    capsys.readouterr()
    assert not run.exists()


def test_predict_output_never_overwrites_the_runs_files(tmp_path, capsys, reference):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    for target in (run / "config.toml", run / "checkpoint.json", run / "metrics.json", current(run, "state.json"),
                   run / "checkpoints"):
        assert main(["predict", str(run), "--output", str(target)]) == 2
        err = capsys.readouterr().err
        assert "is one of the run's own files" in err or "is a folder" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before
    assert main(["predict", str(run), "--output", str(run / "predictions.csv")]) == 0
    assert (run / "predictions.csv").read_text().startswith("index,prediction")


# -- what a run was built from -----------------------------------------------------------------------------------------
def test_an_edited_config_is_refused_by_resume_and_eval(tmp_path, capsys, reference):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    text = (run / "config.toml").read_text()
    (run / "config.toml").write_text(text.replace("lr = 0.01", "lr = 0.02"))
    for argv in (["train", "--resume", str(run), "--epochs", "2"], ["eval", str(run)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "config.toml is not what the run was built from: optimizer.lr is 0.01 in the checkpoint but 0.02 " \
               "now" in err, err
    assert "optimizer.lr" in run_info(run)["checkpoint_error"]
    (run / "config.toml").write_text(text)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0


def test_a_changed_data_file_is_refused(tmp_path, capsys):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((60, 3))
    data.write_text("a,b,y\n" + "".join(f"{a},{b},{int(a + b > 0)}\n" for a, b, _ in rows))
    run = tmp_path / "run"
    train_run({"data": {"dataset": str(data)}, "train": {"epochs": 1}}, out=run, quiet=True)
    lines = data.read_text().splitlines()
    lines[5] = "0.5,0.5,1"
    data.write_text("\n".join(lines) + "\n")
    for argv in (["train", "--resume", str(run), "--epochs", "2"], ["eval", str(run)], ["predict", str(run)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is not the one the run was trained on (its fingerprint changed)" in err, err


def test_a_model_file_of_another_architecture_is_refused(tmp_path, capsys, reference):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    path = current(run, R.MODEL)
    meta = dio.load_metadata(path)
    layers = json.loads(meta["deltagrad.layers"])
    layers[1] = {"type": "Tanh"}
    dio.save(dio.load(path), path, metadata={**meta, "deltagrad.layers": json.dumps(layers)})
    resign(run)
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert 'model.safetensors describes another model than config.toml: layer 1 is {"type": "Tanh"} there but ' \
           '{"type": "ReLU"} in config.toml' in err, err


@pytest.mark.parametrize("change, message", [
    (lambda s: s["state"]["optimizer"]["param_groups"][0].update(lr=-5),
     r"optimizer\.param_groups\[0\]\.lr must be a finite number >= 0, got -5"),
    (lambda s: s["state"]["optimizer"]["param_groups"][0].update(lr="fast"),
     r"optimizer\.param_groups\[0\]\.lr must be a number, got 'fast'"),
    (lambda s: s["state"]["optimizer"]["param_groups"][0].update(eps=0.0),
     r"optimizer\.param_groups\[0\]\.eps must be a finite number > 0, got 0\.0"),
    (lambda s: s["state"]["optimizer"]["param_groups"][0].pop("betas"), r"must be a table with the keys"),
    (lambda s: s["state"]["scheduler"].update(factor=3), r"scheduler\.factor must be a number in \[0, 1\), got 3"),
    (lambda s: s.update(epoch="1"), r"epoch must be a whole number >= 0, got '1'"),
    (lambda s: s.update(step=-2), r"step must be a whole number >= 0, got -2"),
    (lambda s: s.update(epoch=5), r"is of epoch 5, but checkpoint\.json says 1"),
    (lambda s: s["early_stopping"].update(bad_epochs=[]), r"early_stopping must hold"),
    (lambda s: s.update(train_seconds=float("inf")), r"not valid JSON|train_seconds must be a finite number"),
    (lambda s: s["rng"].update(loader={"bit_generator": "PCG64", "state": "x"}), r"cannot restore the training state"),
    (lambda s: s["config"]["optimizer"].update(lr=-1), r"the recorded config is not valid: .*lr"),
    (lambda s: s.update(config=[]), r"'config' must be a JSON object"),
])
def test_values_read_from_a_checkpoint_are_checked_like_flags(tmp_path, capsys, reference, change, message):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    edit_state(run, change)
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("deltagrad: error: ") and "Traceback" not in err
    import re
    assert re.search(message, err), err


@pytest.mark.parametrize("name, data, message", [
    (R.STATE, b"\xff\xfe{}", r"state\.json: not a UTF-8 text file"),
    (R.STATE, b"[" * 100_000 + b"]" * 100_000, r"state\.json: not valid JSON"),
    (R.STATE, b'"a string"', r"state\.json: not a deltagrad training state"),
    (R.METRICS_LINES, b"{}\n", r"metrics\.jsonl, line 1: not the record of epoch 1"),
    (R.METRICS_LINES, b"", r"metrics\.jsonl: has 0 epoch records, the checkpoint is of epoch 1"),
    (R.METRICS_LINES, b"\x80\n", r"metrics\.jsonl: not a UTF-8 text file"),
    (R.METRICS_LINES, b"[[[[[[[[[\n", r"metrics\.jsonl, line 1: not valid JSON"),
])
def test_malformed_checkpoint_files_are_one_line(tmp_path, capsys, reference, name, data, message):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    current(run, name).write_bytes(data)
    resign(run)
    import re
    for argv in (["train", "--resume", str(run), "--epochs", "2"], ["info", str(run)]):
        code = main(argv)
        out, err = capsys.readouterr()
        if argv[0] == "info":  # info describes the run and reports the damage
            assert code == 0 and re.search(message, out), out
        else:
            assert code == 2 and err.count("\n") == 1 and re.search(message, err), err


@pytest.mark.parametrize("name", ["checkpoint.json", "config.toml", "metrics.json", "model.safetensors"])
def test_a_fifo_or_device_in_place_of_a_file_does_not_block(tmp_path, capsys, reference, name):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    main(["eval", str(run)])  # make metrics.json exist for the case that replaces it
    (run / "metrics.json").write_text("{}")
    target = current(run, name) if name == "model.safetensors" else run / name
    target.unlink()
    os.mkfifo(target)
    signal.alarm(20)  # a blocking open would hang here: fail instead
    try:
        readers = [["info", str(run)]] if name == "metrics.json" else [
            ["eval", str(run)], ["info", str(run)], ["train", "--resume", str(run), "--epochs", "2"]]
        for argv in readers:
            code = main(argv)
            out, err = capsys.readouterr()
            assert "not a regular file" in out + err, (argv, out, err)
            assert "Traceback" not in err and code in (0, 2)
        target.unlink()
        target.symlink_to("/dev/zero")
        main(readers[0])
        assert "not a regular file" in "".join(capsys.readouterr())
    finally:
        signal.alarm(0)


def test_a_run_of_an_older_deltagrad_says_so(tmp_path, capsys, reference):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    (run / R.POINTER).unlink()
    (run / R.STATE).write_text("{}")
    assert main(["eval", str(run)]) == 2
    assert "a run folder of an older deltagrad" in capsys.readouterr().err


def test_damaged_checkpoint_record_is_one_line(tmp_path, capsys, reference):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    for text in ('{"format": "deltagrad.checkpoint", "folder": "../../etc", "epoch": 1, "files": {}}', "[]", "{"):
        (run / R.POINTER).write_text(text)
        assert main(["eval", str(run)]) == 2
        err = capsys.readouterr().err
        assert "checkpoint.json: not a valid checkpoint record" in err or "checkpoint.json: not valid JSON" in err


def test_non_finite_weights_are_refused_on_load(tmp_path, capsys, reference):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    path = current(run, R.MODEL)
    weights = {k: v.data.copy() for k, v in dio.load(path).items()}
    weights["0.weight"][0, 0] = np.nan
    dio.save(weights, path, metadata=dio.load_metadata(path))
    resign(run)
    assert main(["eval", str(run)]) == 2
    assert "tensor '0.weight' holds non-finite values (NaN or infinity); refused" in capsys.readouterr().err


def test_a_checkpoint_is_verified_on_every_read(tmp_path, reference):
    run = shutil.copytree(reference / "one", tmp_path / "run")
    path = current(run, R.OPTIMIZER)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"optimizer\.safetensors: checksum mismatch"):
        evaluate_run(run)  # eval uses only the weights, yet verifies the whole checkpoint it stands on
    assert "checksum mismatch" in run_info(run)["checkpoint_error"]
