"""``load_dataset``: a data set by name or path, split into fixed train/validation/test parts and normalized.

``spec`` is a built-in name (``digits``, ``iris``, ``xor``, ``spirals``, ``sine``), a ``.csv`` file, or a
folder of MNIST/Fashion-MNIST IDX files. The split is the same on every run and machine: a permutation drawn
from a fixed seed (``SPLIT_SEED``), 20% test and 10% validation (an IDX folder brings its own test set, and
10% of its training images become the validation set). Normalization uses the training part's statistics
only: ``x' = (x − mean) / std``, one mean/std for all pixels of an image set, one per column for a table.
A feature that is constant on the training part (std below 1e-8) is only centred: its std is taken as 1,
so nothing divides by zero; a given ``std`` must be positive.

Small sets: the parts are rounded (``round(0.2 n)`` test, ``round(0.1 n)`` validation examples), so fewer
than 3 examples give no test examples and fewer than 6 no validation examples; the training part always
has at least one. ``split_warnings`` says which part is empty, and losses over an empty part are ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deltagrad.data.builtin import BUILTIN, RawData
from deltagrad.data.dataset import TensorDataset
from deltagrad.data.errors import DataError
from deltagrad.data.files import csv_file, mnist_folder

SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1


@dataclass
class DataSplits:
    """A data set split three ways, with what a model and a run need to know about it."""

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    task: str                         # "classification" or "regression"
    input_shape: tuple[int, ...]      # of one example, e.g. (1, 8, 8) or (4,)
    num_outputs: int                  # classes, or regression targets
    description: str = ""
    classes: list = field(default_factory=list)
    mean: Any = None                  # the normalization applied (a float, or a list per feature); None: none
    std: Any = None


def source_kind(spec: str) -> str:
    """``"builtin"``, ``"csv"`` or ``"idx"`` for a data set spec; ``DataError`` for one that is none of these."""
    if spec in BUILTIN:
        return "builtin"
    p = Path(spec)
    if p.is_dir():
        return "idx"
    if p.is_file():
        if p.suffix.lower() in (".csv", ".txt"):
            return "csv"
        raise DataError(f"{spec}: not a data set deltagrad reads (a .csv file, or a folder of IDX files)")
    if p.suffix.lower() == ".csv" or "/" in spec or "\\" in spec:
        raise DataError(f"{spec}: no such file or folder")
    raise DataError(f"unknown data set {spec!r}; built-in data sets: {', '.join(BUILTIN)} "
                    "(or give a .csv file or a folder of MNIST IDX files)")


def load_raw(spec: str, target: str | int | None = None, task: str = "auto") -> RawData:
    """Every example of the data set ``spec``, unsplit and unnormalized."""
    kind = source_kind(spec)
    if kind == "builtin":
        return BUILTIN[spec]()
    if kind == "idx":
        return mnist_folder(spec)
    return csv_file(spec, target=target, task=task)


def split_indices(n: int, val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
                  seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed ``(train, val, test)`` index arrays for ``n`` examples: test first, then validation."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    if n - n_test - n_val < 1:
        raise DataError(f"a data set of {n} examples is too small to split into train/validation/test "
                        "(it leaves no training examples)")
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def split_summary(data: DataSplits) -> str:
    """``"3 examples: 2 train / 0 validation / 1 test"``."""
    a, b, c = len(data.train), len(data.val), len(data.test)
    return f"{a + b + c} example{'s' if a + b + c != 1 else ''}: {a} train / {b} validation / {c} test"


def split_warnings(data: DataSplits) -> list[str]:
    """A warning line for each empty validation or test part (whose loss is then not measured: ``None``)."""
    out = []
    for part, what in ((data.val, "validation"), (data.test, "test")):
        if len(part) == 0:
            out.append(f"warning: data set {data.name!r} has no {what} examples ({split_summary(data)}; the fixed "
                       f"split sets aside {round(100 * VAL_FRACTION)}% for validation and "
                       f"{round(100 * TEST_FRACTION)}% for test, rounded): the {what} loss is not measured")
    return out


def fit_normalization(x: np.ndarray, images: bool) -> tuple[Any, Any]:
    """``(mean, std)`` of training inputs: scalars for images, one per feature (axis 0) otherwise."""
    if images:
        mean, std = float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
        return mean, (std if std > 1e-8 else 1.0)
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [float(v) for v in mean], [float(v) for v in std]


def normalize(x: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """``(x − mean) / std`` in float32; ``mean``/``std`` are scalars or per-feature lists (for ``x`` of shape
    ``(N, F)``)."""
    if mean is None:
        return x.astype(np.float32, copy=False)
    if std is None:
        raise DataError("normalization needs a std with its mean")
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    if m.ndim and (x.ndim != 2 or x.shape[1] != m.shape[0]):
        raise DataError(f"inputs of shape {tuple(x.shape[1:])} do not match the {m.shape[0]} features "
                        "the model was trained on")
    if s.ndim and (x.ndim != 2 or x.shape[1] != s.shape[0]):
        raise DataError(f"inputs of shape {tuple(x.shape[1:])} do not match the {s.shape[0]} values of std")
    if not (np.isfinite(s).all() and (s > 0).all()):
        bad = np.flatnonzero(~(np.isfinite(s) & (s > 0)).reshape(-1))[0]
        raise DataError(f"std {float(s.reshape(-1)[bad]):g}" + (f" of feature {bad}" if s.ndim else "")
                        + " (in float32) is not a positive number: normalizing would divide by it")
    with np.errstate(over="ignore"):  # a tiny std overflows float32: load_dataset reports that, naming the set
        return ((x - m) / s).astype(np.float32, copy=False)


_KINDS = {"b": "booleans", "c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects",
          "M": "dates", "m": "time spans", "V": "records"}


def as_inputs(x: Any, input_shape: tuple[int, ...], name: str = "inputs") -> np.ndarray:
    """Raw inputs for a model that takes examples of ``input_shape``, checked and as float32 ``(N, *input_shape)``.

    ``x`` holds real numbers (float or integer; not strings, objects, complex numbers or booleans), at least
    one example, each of ``input_shape`` or flattened (``(N, prod(input_shape))`` is reshaped), all finite in
    float32. Anything else is a one-line ``DataError`` that starts with ``name`` (the file) and names the shapes.

    >>> as_inputs(np.zeros((5, 64)), (1, 8, 8)).shape
    (5, 1, 8, 8)
    """
    a = np.asarray(x)
    if a.dtype.kind not in "iuf":
        raise DataError(f"{name}: holds {_KINDS.get(a.dtype.kind, 'values')} (dtype {a.dtype}), but a model "
                        "predicts from real numbers (a float or integer array)")
    shape = tuple(int(s) for s in input_shape)
    if a.ndim == 0 or a.shape[0] == 0:
        raise DataError(f"{name}: holds no examples (an array of shape {a.shape}); the model takes (N, "
                        f"{', '.join(map(str, shape))}) with N >= 1")
    if a.shape[1:] != shape:
        if math.prod(a.shape[1:]) != math.prod(shape) or a.ndim == 1:
            flat = f" or (N, {math.prod(shape)})" if len(shape) > 1 else ""
            raise DataError(f"{name}: inputs of shape {a.shape[1:]} do not fit the model, which takes {shape} "
                            f"(the array has shape {a.shape}; give (N, {', '.join(map(str, shape))}){flat})")
        a = a.reshape((len(a), *shape))
    with np.errstate(over="ignore", invalid="ignore"):
        a = a.astype(np.float32, copy=False)
    finite = np.isfinite(a).reshape(len(a), -1).all(axis=1)
    if not finite.all():
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise DataError(f"{name}: {bad} value{'s are' if bad != 1 else ' is'} not finite (NaN or infinite in "
                        "float32), the first in example "
                        f"{int(np.argmin(finite))}; a model predicts from finite numbers only")
    return a


def _brief(v: Any) -> str:
    if isinstance(v, list) and len(v) > 4:
        return f"from {min(v):g} to {max(v):g}"
    return f"{v}"


def load_dataset(spec: str = "digits", *, target: str | int | None = None, task: str = "auto",
                 normalize_inputs: bool = True, mean: Any = None, std: Any = None) -> DataSplits:
    """Load ``spec`` and split it (fixed seed); normalize with the training part's statistics, or with the
    given ``mean``/``std`` (a run's saved ones, so that evaluation sees the inputs training saw).

    >>> d = load_dataset("digits")
    >>> len(d.train), len(d.val), len(d.test), d.input_shape, d.num_outputs
    (1258, 180, 359, (1, 8, 8), 10)
    """
    raw = load_raw(spec, target=target, task=task)
    if raw.test_x is not None:
        tr, va, _ = split_indices(len(raw.x), VAL_FRACTION, 0.0)
        parts = [(raw.x[tr], raw.y[tr]), (raw.x[va], raw.y[va]), (raw.test_x, raw.test_y)]
    else:
        tr, va, te = split_indices(len(raw.x))
        parts = [(raw.x[tr], raw.y[tr]), (raw.x[va], raw.y[va]), (raw.x[te], raw.y[te])]
    if normalize_inputs and mean is None:
        mean, std = fit_normalization(parts[0][0], raw.images)
    elif not normalize_inputs:
        mean = std = None
    xs = [normalize(x, mean, std) for x, _ in parts]
    for x, what in zip(xs, ("training", "validation", "test") if mean is not None else ()):  # raw data are finite
        if not np.isfinite(x).all():  # a tiny given std, or huge values: x / std overflows float32
            raise DataError(f"{spec}: {int(np.size(x) - np.isfinite(x).sum())} {what} inputs are not finite after "
                            f"normalizing them ((x − mean) / std in float32, std {_brief(std)})")
    sets = [TensorDataset(x, y) for x, (_, y) in zip(xs, parts)]
    num_outputs = len(raw.classes) if raw.task == "classification" else int(raw.y.shape[1])
    return DataSplits(name=spec, train=sets[0], val=sets[1], test=sets[2], task=raw.task,
                      input_shape=tuple(int(s) for s in raw.x.shape[1:]), num_outputs=num_outputs,
                      description=raw.description, classes=list(raw.classes), mean=mean, std=std)
