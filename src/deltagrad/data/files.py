"""Data sets from files: MNIST/Fashion-MNIST IDX folders (raw or .gz) and numeric CSV tables; and the
inputs a saved model predicts from (a ``.npy`` array or a CSV table), read without blocking.

Errors are ``DataError`` and name the file, and the line for CSV or the expected and found sizes for IDX.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import stat
import warnings
import zlib
from pathlib import Path

import numpy as np

from deltagrad.data.builtin import RawData
from deltagrad.data.errors import DataError

# IDX: two zero bytes, a type code, the number of dimensions, then each dimension as a big-endian int32
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_MNIST_FILES = {  # role: (file stem, expected magic number)
    "train_images": ("train-images-idx3-ubyte", 0x00000803),
    "train_labels": ("train-labels-idx1-ubyte", 0x00000801),
    "test_images": ("t10k-images-idx3-ubyte", 0x00000803),
    "test_labels": ("t10k-labels-idx1-ubyte", 0x00000801),
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if raw[:2] == b"\x1f\x8b":  # gzip, whatever the name says
        try:
            return gzip.decompress(raw)
        except EOFError:
            raise DataError(f"{path}: the gzip data is truncated ({len(raw)} bytes)") from None
        except (OSError, zlib.error) as e:
            raise DataError(f"{path}: broken gzip data ({e})") from None
    return raw


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """The array in an IDX file (the MNIST format), raw or gzip-compressed.

    Header: magic number ``0x0000TTDD`` (TT the element type, 0x08 = uint8; DD the number of dimensions),
    then DD big-endian int32 sizes, then the elements in C order.

    >>> images = read_idx("mnist/train-images-idx3-ubyte.gz")   # uint8, shape (60000, 28, 28)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file: expected at least 4 bytes of header, found {len(data)}")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if expected_magic is not None and magic != expected_magic:
        raise DataError(f"{path}: wrong magic number 0x{magic:08X}, expected 0x{expected_magic:08X}"
                        " (not an IDX file of this kind)")
    if data[:2] != b"\x00\x00" or code not in _IDX_TYPES or ndim == 0:
        raise DataError(f"{path}: wrong magic number 0x{magic:08X} (not an IDX file)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX file: expected a {header}-byte header, found {len(data)} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        what = "truncated IDX file" if len(data) < expected else "IDX file longer than its header says"
        raise DataError(f"{path}: {what}: expected {expected} bytes for shape {shape}, found {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no file {stem} or {stem}.gz (an MNIST/Fashion-MNIST folder holds "
                    + ", ".join(s for s, _ in _MNIST_FILES.values()) + ", raw or .gz)")


def mnist_folder(folder: str | Path) -> RawData:
    """MNIST or Fashion-MNIST from a local folder of the four IDX files: 1×28×28 images scaled to [0, 1]
    (any size, as long as the training and test images have the same one)."""
    folder = Path(folder)
    paths = {role: _find_idx(folder, stem) for role, (stem, _) in _MNIST_FILES.items()}
    arrays = {role: read_idx(paths[role], magic) for role, (_, magic) in _MNIST_FILES.items()}
    for part in ("train", "test"):
        xi, yi = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(xi) != len(yi):
            raise DataError(f"{folder}: {len(xi)} {part} images but {len(yi)} {part} labels")
    train_size, test_size = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
    if train_size != test_size:
        raise DataError(f"{folder}: the test images are {'×'.join(map(str, test_size))} "
                        f"({paths['test_images'].name}) but the training images {'×'.join(map(str, train_size))} "
                        f"({paths['train_images'].name}); a model takes one image size")
    n_classes = int(max(arrays["train_labels"].max(initial=0), arrays["test_labels"].max(initial=0))) + 1

    def images(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / np.float32(255.0))[:, None, :, :]

    return RawData(images(arrays["train_images"]), arrays["train_labels"].astype(np.int64), "classification",
                   f"IDX images from {folder}", images=True, classes=list(range(n_classes)),
                   test_x=images(arrays["test_images"]), test_y=arrays["test_labels"].astype(np.int64))


# -- CSV --------------------------------------------------------------------------------------------------------
def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_text(path: Path, error: type[Exception], missing: str = "no such file", encoding: str = "utf-8") -> str:
    """The text of ``path``; a missing, unreadable or non-UTF-8 file raises ``error`` naming the file."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror or e})") from None


def read_csv_table(path: str | Path, text: str | None = None) -> tuple[list[str], np.ndarray, bool]:
    """``(column names, float64 values (rows, columns), has_header)`` of a numeric CSV file (or of ``text``,
    already read from ``path``).

    A first line with any non-numeric cell is a header (otherwise columns are named 0, 1, ...). Every other
    line must have as many cells as the first and only finite numbers; blank lines are skipped.
    """
    path = Path(path)
    if text is None:
        text = read_text(path, DataError, encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    first = next((r for r in reader if r and any(c.strip() for c in r)), None)
    if first is None:
        raise DataError(f"{path}: the file is empty")
    first_line, width = reader.line_num, len(first)
    has_header = not all(_is_number(c) for c in first)
    names = [c.strip() for c in first] if has_header else [str(k) for k in range(width)]
    try:  # NumPy's C parser for the common, valid case; the loop below finds the line of any problem
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below, with the file name
            values = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=first_line if has_header else 0,
                                dtype=np.float64, ndmin=2, comments=None, quotechar='"')
        if values.shape[0] and values.shape[1] == width and np.isfinite(values).all():
            return names, values, has_header
    except ValueError:
        pass
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    body = rows[1:] if has_header else rows
    if not body:
        raise DataError(f"{path}: no data rows after the header on line {first_line}")
    values = np.empty((len(body), width), dtype=np.float64)
    for r, (line, cells) in enumerate(body):
        if len(cells) != width:
            raise DataError(f"{path}, line {line}: {len(cells)} values, expected {width} as on line {first_line}")
        for c, cell in enumerate(cells):
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"{path}, line {line}, column {names[c]!r}: {cell.strip()!r} is not a number") from None
            if not math.isfinite(v):
                raise DataError(f"{path}, line {line}, column {names[c]!r}: {cell.strip()!r} is not a finite number")
            values[r, c] = v
    return names, values, has_header


# -- inputs to predict from ----------------------------------------------------------------------------------
_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
                (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _regular(path: Path, mode: int) -> None:
    for test, what in _NOT_REGULAR:
        if test(mode):
            raise DataError(f"{path}: is {what}, not a file of inputs (a .npy array or a .csv table)")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file")


def read_regular_file(path: str | Path) -> bytes:
    """The bytes of ``path``, which must be a regular file. A folder, a FIFO, a device or a socket is refused
    from its ``stat`` before it is opened (reading a FIFO waits for a writer; /dev/zero never ends), and the
    file is opened non-blocking and checked again, so that nothing swapped in between can block either."""
    path = Path(path)
    try:
        _regular(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        _regular(path, os.fstat(f.fileno()).st_mode)
        return f.read()


def read_inputs_file(path: str | Path) -> np.ndarray | tuple[list[str], np.ndarray, bool]:
    """What a file of inputs holds: the array of a ``.npy`` file, or ``read_csv_table``'s triple for a CSV table.

    A ``.npz`` archive, an empty file, a pickled (object) array and a non-UTF-8 table are refused, naming the file.
    """
    path = Path(path)
    raw = read_regular_file(path)
    if not raw:
        raise DataError(f"{path}: the file is empty")
    if raw.startswith(b"PK\x03\x04") or path.suffix.lower() == ".npz":
        raise DataError(f"{path}: a .npz archive (several arrays); save the inputs as one array with numpy.save "
                        "(a .npy file)")
    if not raw.startswith(b"\x93NUMPY") and path.suffix.lower() == ".npy":
        what = "a pickle, which is refused" if raw[:1] == b"\x80" else "it does not start with the NumPy header"
        raise DataError(f"{path}: not a .npy array ({what})")
    if raw.startswith(b"\x93NUMPY"):
        try:
            return np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise DataError(f"{path}: cannot read as a .npy array ({e}); object arrays (pickles) are refused") \
                    from None
            raise DataError(f"{path}: not a valid .npy file ({' '.join(str(e).split())})") from None
        except (EOFError, OSError) as e:
            raise DataError(f"{path}: truncated or broken .npy file ({e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start}); inputs are a .npy array "
                        "or a numeric .csv table") from None
    return read_csv_table(path, text)


def _column(names: list[str], target: str | int | None, path: Path) -> int:
    if target is None or target == "":
        return len(names) - 1
    if isinstance(target, str) and target in names:
        return names.index(target)
    try:
        k = int(target)
    except (TypeError, ValueError):
        raise DataError(f"{path}: no column {target!r} (columns: {', '.join(names)})") from None
    if not -len(names) <= k < len(names):
        raise DataError(f"{path}: column index {k} is out of range for {len(names)} columns")
    return k % len(names)


def csv_file(path: str | Path, target: str | int | None = None, task: str = "auto") -> RawData:
    """A numeric CSV table: the ``target`` column (a name or an index; by default the last) is predicted from
    the others. ``task="auto"`` makes an integer-valued target with at most 100 distinct values a
    classification (classes numbered in sorted order), anything else a regression."""
    path = Path(path)
    names, values, _ = read_csv_table(path)
    if len(names) < 2:
        raise DataError(f"{path}: needs at least two columns (features and a target), found {len(names)}")
    k = _column(names, target, path)
    y = values[:, k]
    x = np.delete(values, k, axis=1).astype(np.float32)
    if task not in ("auto", "classification", "regression"):
        raise DataError(f"task must be 'auto', 'classification' or 'regression', not {task!r}")
    integral = bool(np.all(y == np.round(y)))
    classes = np.unique(y)
    if task == "auto":
        task = "classification" if integral and len(classes) <= 100 else "regression"
    if task == "classification":
        if not integral:
            raise DataError(f"{path}: column {names[k]!r} has non-integer values, so it cannot be a class label")
        labels = np.searchsorted(classes, y).astype(np.int64)
        return RawData(x, labels, task, f"CSV {path.name}, target column {names[k]!r}",
                       classes=[int(c) for c in classes])
    return RawData(x, y.astype(np.float32)[:, None], task, f"CSV {path.name}, target column {names[k]!r}")
