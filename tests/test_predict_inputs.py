"""`deltagrad predict --input FILE` with odd inputs: each is one line on stderr (exit 2, no traceback, no file
written), and nothing blocks: a FIFO, a folder or a device is refused before it is opened."""

from __future__ import annotations

import gzip
import os
import re
import threading
import zipfile

import numpy as np
import pytest

from deltagrad.cli.main import main
from deltagrad.data import DataError, as_inputs, mnist_folder
from deltagrad.train import predict_run


def run_main(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("predict") / "run"
    assert main(["train", "--epochs", "1", "--batch-size", "128", "--quiet", "--out", str(run)]) == 0
    return run


def refused(capsys, run, path, pattern, tmp_path):
    """``predict --input path`` fails with one line matching ``pattern`` and writes no --output file."""
    output = tmp_path / "predictions.csv"
    code, out, err = run_main(capsys, "predict", run, "--input", path, "--output", output)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("deltagrad: error: "), (out, err)
    assert "Traceback" not in err and out == ""
    assert re.search(pattern, lines[0]), lines[0]
    assert not output.exists()
    return lines[0]


def npy(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array, allow_pickle=False)
    return path


GOOD = np.random.default_rng(0).integers(0, 17, (4, 64)).astype(np.float32) / 16


@pytest.mark.parametrize("name, array, pattern", [
    ("rows0.npy", np.zeros((0, 64), np.float32), r"rows0\.npy: holds no examples \(an array of shape \(0, 64\)\)"),
    ("scalar.npy", np.float32(3), r"scalar\.npy: holds no examples \(an array of shape \(\)\)"),
    ("text.npy", np.array([["a"] * 64]), r"text\.npy: holds strings \(dtype <U1\), but a model predicts from real "
                                         r"numbers"),
    ("complex.npy", GOOD.astype(np.complex64), r"complex\.npy: holds complex numbers \(dtype complex64\)"),
    ("bool.npy", GOOD > 0.5, r"bool\.npy: holds booleans \(dtype bool\)"),
    ("shape.npy", np.zeros((3, 7), np.float32),
     r"shape\.npy: inputs of shape \(7,\) do not fit the model, which takes \(1, 8, 8\) \(the array has shape "
     r"\(3, 7\); give \(N, 1, 8, 8\) or \(N, 64\)\)"),
    ("one.npy", np.zeros(64, np.float32), r"one\.npy: inputs of shape \(\) do not fit the model, which takes "
                                          r"\(1, 8, 8\) \(the array has shape \(64,\)"),
    ("nan.npy", np.where(np.arange(256).reshape(4, 64) == 130, np.nan, GOOD),
     r"nan\.npy: 1 value is not finite \(NaN or infinite in float32\), the first in example 2"),
    ("inf.npy", np.where(np.arange(256).reshape(4, 64) % 100 == 7, np.inf, GOOD).reshape(4, 8, 8),
     r"inf\.npy: 3 values are not finite .*the first in example 0"),
    ("big.npy", np.full((2, 64), 1e300), r"big\.npy: 128 values are not finite \(NaN or infinite in float32\)"),
])
def test_odd_arrays_are_one_line(tmp_path, capsys, digits_run, name, array, pattern):
    refused(capsys, digits_run, npy(tmp_path, name, array), pattern, tmp_path)


def test_odd_files_are_one_line(tmp_path, capsys, digits_run):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    refused(capsys, digits_run, empty, r"empty\.npy: the file is empty", tmp_path)
    truncated = tmp_path / "cut.npy"
    truncated.write_bytes(npy(tmp_path, "whole.npy", GOOD).read_bytes()[:100])
    refused(capsys, digits_run, truncated, r"cut\.npy: (truncated or broken|not a valid) \.npy file", tmp_path)
    np.savez(tmp_path / "several.npz", x=GOOD, y=GOOD)
    refused(capsys, digits_run, tmp_path / "several.npz", r"several\.npz: a \.npz archive \(several arrays\); save the "
                                                          r"inputs as one array with numpy\.save", tmp_path)
    disguised = tmp_path / "zip.npy"
    with zipfile.ZipFile(disguised, "w") as z:
        z.writestr("x.npy", b"")
    refused(capsys, digits_run, disguised, r"zip\.npy: a \.npz archive", tmp_path)
    text = tmp_path / "text.npy"
    text.write_text("1,2,3\n")
    refused(capsys, digits_run, text, r"text\.npy: not a \.npy array \(it does not start with the NumPy header\)",
            tmp_path)
    refused(capsys, digits_run, tmp_path / "missing.npy", r"missing\.npy: no such file", tmp_path)


def test_odd_csv_tables_are_one_line(tmp_path, capsys, digits_run):
    narrow = tmp_path / "narrow.csv"
    np.savetxt(narrow, GOOD[:, :3], delimiter=",")
    refused(capsys, digits_run, narrow, r"narrow\.csv: 3 columns, but the model takes 64 features \(or 65 columns "
                                        r"with the training target\)", tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("caf\xe9\n".encode("latin-1") + b"1\n")
    refused(capsys, digits_run, latin, r"latin\.csv: not a UTF-8 text file \(invalid continuation byte at byte 3\)",
            tmp_path)
    nan = tmp_path / "nan.csv"
    nan.write_text(",".join(["0"] * 63 + ["nan"]) + "\n")
    refused(capsys, digits_run, nan, r"nan\.csv, line 1, column '63': 'nan' is not a finite number", tmp_path)


def test_paths_that_are_not_regular_files_are_refused_without_blocking(tmp_path, capsys, digits_run):
    refused(capsys, digits_run, tmp_path, r": is a folder, not a file of inputs \(a \.npy array or a \.csv table\)",
            tmp_path)
    refused(capsys, digits_run, "/dev/null", r"/dev/null: is a device, not a file of inputs", tmp_path)
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    done = {}

    def attempt():  # opening a FIFO for reading waits for a writer: it must never be opened
        done["result"] = run_main(capsys, "predict", digits_run, "--input", fifo)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():  # unblock the reader so the test process can finish, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("predict blocked on a FIFO")
    code, _, err = done["result"]
    assert code == 2 and err.strip() == f"deltagrad: error: {fifo}: is a named pipe (FIFO), not a file of inputs " \
                                        "(a .npy array or a .csv table)"


def test_good_inputs_still_predict_flat_or_shaped(tmp_path, capsys, digits_run):
    for name, array in (("flat.npy", GOOD), ("shaped.npy", GOOD.reshape(4, 1, 8, 8)),
                        ("ints.npy", (GOOD * 16).astype(np.uint8).reshape(4, 8, 8))):
        code, out, err = run_main(capsys, "predict", digits_run, "--input", npy(tmp_path, name, array))
        assert code == 0 and len(out.strip().splitlines()) == 5, err
    assert len(predict_run(digits_run, GOOD.tolist())["predictions"]) == 4


def test_the_python_api_refuses_the_same(digits_run):
    with pytest.raises(DataError, match=r"^inputs: holds strings"):
        predict_run(digits_run, [["x"] * 64])
    with pytest.raises(DataError, match=r"^inputs: 1 value is not finite"):
        predict_run(digits_run, np.where(np.arange(64) == 5, np.nan, 0.0)[None])
    with pytest.raises(DataError, match=r"^x: holds Python objects"):
        as_inputs(np.array([None, 1], dtype=object), (2,), "x")


def idx(magic_type, dims, payload=b""):
    header = bytes([0, 0, 8, magic_type]) + b"".join(n.to_bytes(4, "big") for n in dims)
    return header + payload


def test_test_images_of_another_size_name_both_files_and_sizes(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(3, (4, 5, 5), bytes(100))))
    (folder / "train-labels-idx1-ubyte").write_bytes(idx(1, (4,), bytes([0, 1, 0, 1])))
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx(3, (2, 6, 6), bytes(72)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx(1, (2,), bytes([1, 0])))
    message = (f"{folder}: the test images are 6×6 (t10k-images-idx3-ubyte) but the training images 5×5 "
               "(train-images-idx3-ubyte.gz); a model takes one image size")
    with pytest.raises(DataError) as e:
        mnist_folder(folder)
    assert str(e.value) == message
    code, _, err = run_main(capsys, "train", "--dataset", folder, "--out", tmp_path / "r", "--quiet")
    assert code == 2 and err == f"deltagrad: error: {message}\n" and not (tmp_path / "r").exists()
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx(3, (2, 5, 5), bytes(50)))
    assert mnist_folder(folder).test_x.shape == (2, 1, 5, 5)
