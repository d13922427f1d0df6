"""File-based data: MNIST IDX folders (raw and .gz) and numeric CSV tables, and their error messages."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from deltagrad.data import DataError, csv_file, load_dataset, read_csv_table, read_idx


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + arr.astype(">u1" if code == 0x08 else ">i4").tobytes()


def write_mnist(folder, n_train=30, n_test=10, gz=False, size=6):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    parts = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for name, arr in parts.items():
        data = idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return parts


# -- IDX --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_raw_and_gzip(tmp_path, gz):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(arr)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.uint8


def test_read_idx_big_endian_int32(tmp_path):
    arr = np.array([1, -2, 70000], dtype=np.int32)
    (tmp_path / "b").write_bytes(idx_bytes(arr, code=0x0C))
    out = read_idx(tmp_path / "b")
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.byteorder in "=|" or out.dtype.isnative


def test_idx_wrong_magic_names_file_expected_and_found(tmp_path):
    labels = idx_bytes(np.zeros(5, np.uint8))        # magic 0x00000801
    (tmp_path / "train-images-idx3-ubyte").write_bytes(labels)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: wrong magic number 0x00000801, "
                                        r"expected 0x00000803"):
        read_idx(tmp_path / "train-images-idx3-ubyte", 0x00000803)
    (tmp_path / "junk").write_bytes(b"hello world, not idx")
    with pytest.raises(DataError, match=r"junk: wrong magic number 0x68656C6C"):
        read_idx(tmp_path / "junk")


def test_idx_truncated_names_expected_and_found_sizes(tmp_path):
    data = idx_bytes(np.zeros((3, 4, 4), np.uint8))   # 16-byte header + 48 bytes
    (tmp_path / "t").write_bytes(data[:-5])
    with pytest.raises(DataError, match=r"t: truncated IDX file: expected 64 bytes for shape \(3, 4, 4\), found 59"):
        read_idx(tmp_path / "t")
    (tmp_path / "h").write_bytes(data[:10])
    with pytest.raises(DataError, match=r"h: truncated IDX file: expected a 16-byte header, found 10 bytes"):
        read_idx(tmp_path / "h")
    (tmp_path / "t.gz").write_bytes(gzip.compress(data)[:-12])
    with pytest.raises(DataError, match=r"t\.gz: the gzip data is truncated"):
        read_idx(tmp_path / "t.gz")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_folder_uses_its_own_test_set(tmp_path, gz):
    parts = write_mnist(tmp_path / "mnist", gz=gz)
    d = load_dataset(str(tmp_path / "mnist"))
    assert (len(d.train), len(d.val), len(d.test)) == (27, 3, 10)
    assert d.input_shape == (1, 6, 6) and d.num_outputs == 10
    raw = parts["t10k-images-idx3-ubyte"].astype(np.float32) / 255
    np.testing.assert_allclose(d.test.arrays[0][:, 0], (raw - d.mean) / d.std, rtol=1e-5, atol=1e-5)


def test_mnist_folder_missing_and_mismatched_files(tmp_path):
    write_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"m: no file t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte\.gz"):
        load_dataset(str(tmp_path / "m"))
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9, np.uint8)))
    with pytest.raises(DataError, match="10 test images but 9 test labels"):
        load_dataset(str(tmp_path / "m"))


# -- CSV -------------------------------------------------------------------------------------------------------------
def test_csv_with_header_target_by_name_index_and_default(tmp_path):
    p = tmp_path / "t.csv"
    rows = "\n".join(f"{i},{i * 0.5},{i % 3}" for i in range(40))
    p.write_text("a,b,label\n" + rows + "\n")
    raw = csv_file(p)
    assert raw.task == "classification" and raw.classes == [0, 1, 2] and raw.x.shape == (40, 2)
    raw = csv_file(p, target="a")
    assert raw.task == "classification" and len(raw.classes) == 40   # integers, at most 100 distinct
    np.testing.assert_array_equal(raw.x[:, 1], np.arange(40) % 3)
    raw = csv_file(p, target="1")
    assert raw.task == "regression" and raw.y.shape == (40, 1)
    raw = csv_file(p, target=1, task="regression")
    assert raw.task == "regression"
    with pytest.raises(DataError, match=r"t\.csv: no column 'zzz' \(columns: a, b, label\)"):
        csv_file(p, target="zzz")


def test_csv_without_header_and_class_relabelling(tmp_path):
    p = tmp_path / "n.csv"
    p.write_text("1.5,2,10\n\n0.5,1,20\n2.5,0,10\n")
    names, values, header = read_csv_table(p)
    assert names == ["0", "1", "2"] and not header and values.shape == (3, 3)
    raw = csv_file(p)
    assert raw.classes == [10, 20] and raw.y.tolist() == [0, 1, 0]


def test_csv_load_dataset_split(tmp_path):
    p = tmp_path / "r.csv"
    x = np.random.default_rng(0).normal(size=(100, 3))
    np.savetxt(p, np.column_stack([x, x @ [1.0, 2.0, -1.0]]), delimiter=",", header="x1,x2,x3,y", comments="")
    d = load_dataset(str(p))
    assert d.task == "regression" and (len(d.train), len(d.val), len(d.test)) == (70, 10, 20)
    assert len(d.mean) == 3


def test_csv_ragged_row_names_the_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 4: 2 values, expected 3 as on line 1"):
        csv_file(p)


def test_csv_non_numeric_cell_names_line_and_column(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n4,oops,6\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 3, column 'b': 'oops' is not a number"):
        csv_file(p)
    p.write_text("1,2,3\n4,,6\n")
    with pytest.raises(DataError, match=r"line 2, column '1': '' is not a number"):
        csv_file(p)
    p.write_text("a,b\n1,nan\n")
    with pytest.raises(DataError, match=r"line 2, column 'b': 'nan' is not a finite number"):
        csv_file(p)


def test_csv_empty_and_header_only(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(DataError, match=r"e\.csv: the file is empty"):
        csv_file(p)
    p.write_text("a,b\n")
    with pytest.raises(DataError, match=r"e\.csv: no data rows after the header on line 1"):
        csv_file(p)
    p.write_text("a\n1\n2\n")
    with pytest.raises(DataError, match="at least two columns"):
        csv_file(p)
