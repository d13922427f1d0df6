"""deltagrad.data: datasets, the DataLoader, random_split, built-in sets, fixed splits and normalization."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import deltagrad as dg
from deltagrad.data import (
    BUILTIN,
    DataError,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    load_dataset,
    load_raw,
    random_split,
    split_indices,
)


def make_ds(n=10):
    return TensorDataset(np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32), np.arange(n))


# -- datasets -----------------------------------------------------------------------------------------------------
def test_tensor_dataset_items_and_length():
    x, y = dg.randn(6, 3), dg.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi.numpy(), x.numpy()[2])
    assert yi.item() == 2
    np.testing.assert_array_equal(ds.tensors[0].numpy(), x.numpy())


def test_tensor_dataset_needs_equal_first_dims():
    with pytest.raises(ValueError, match=r"same first dimension.*\(5, 2\).*\(4,\)"):
        TensorDataset(np.zeros((5, 2)), np.zeros(4))


def test_subset_and_concat():
    ds = make_ds(10)
    sub = Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0][1].item() == 7
    np.testing.assert_array_equal(sub.gather(np.array([1, 0]))[1], [2, 7])
    both = ds + sub
    assert len(both) == 12 and both[10][1].item() == 7 and both[-1][1].item() == 2
    with pytest.raises(IndexError):
        both[12]


# -- DataLoader -----------------------------------------------------------------------------------------------------
def test_loader_batches_and_drop_last():
    ds = make_ds(10)
    batches = list(DataLoader(ds, batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), np.arange(10))
    assert batches[0][0].shape == (4, 3) and batches[0][0].dtype == np.float32
    dl = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dl) == 2 and [len(b[1]) for b in dl] == [4, 4]
    assert len(DataLoader(ds, batch_size=4)) == 3


def test_loader_shuffle_is_seeded_and_covers_each_example_once():
    ds = make_ds(50)

    def order(seed):
        dl = DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(seed))
        return [np.concatenate([b[1].numpy() for b in dl]) for _ in range(2)]  # two epochs

    a, b, c = order(1), order(1), order(2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])           # a new order each epoch
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(np.sort(a[0]), np.arange(50))


def test_loader_without_generator_follows_manual_seed():
    ds = make_ds(30)
    dl = DataLoader(ds, batch_size=30, shuffle=True)
    dg.manual_seed(5)
    first = next(iter(dl))[1].numpy()
    dg.manual_seed(5)
    np.testing.assert_array_equal(next(iter(dl))[1].numpy(), first)


def test_loader_collates_generic_datasets():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return dg.tensor([float(i)]), i * i

    x, y = next(iter(DataLoader(Squares(), batch_size=3)))
    assert x.shape == (3, 1) and y.numpy().tolist() == [0, 1, 4]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_loader_rejects_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(make_ds(), batch_size=bad)


def test_random_split_counts_fractions_and_seed():
    ds = make_ds(10)
    a, b = random_split(ds, [7, 3], generator=np.random.default_rng(0))
    assert (len(a), len(b)) == (7, 3)
    assert sorted(np.concatenate([a.indices, b.indices]).tolist()) == list(range(10))
    c, d = random_split(ds, [0.75, 0.25], generator=np.random.default_rng(0))
    assert (len(c), len(d)) == (8, 2)
    a2, _ = random_split(ds, [7, 3], generator=np.random.default_rng(0))
    np.testing.assert_array_equal(a.indices, a2.indices)
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [6, 3])


# -- built-in data --------------------------------------------------------------------------------------------------
def test_digits_embedded_copy():
    raw = load_raw("digits")
    assert raw.x.shape == (1797, 1, 8, 8) and raw.x.dtype == np.float32
    assert raw.x.min() == 0 and raw.x.max() == 1
    assert np.bincount(raw.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_embedded_data_equals_scikit_learns_copy():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    raw = load_raw("digits")
    np.testing.assert_array_equal(raw.x.reshape(1797, 64) * 16, d.data)
    np.testing.assert_array_equal(raw.y, d.target)
    i = datasets.load_iris()
    raw = load_raw("iris")
    np.testing.assert_allclose(raw.x, i.data, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(raw.y, i.target)


def test_library_does_not_import_sklearn():
    code = ("import sys, deltagrad, deltagrad.train; deltagrad.data.load_dataset('digits'); "
            "deltagrad.data.load_dataset('iris'); assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["xor", "spirals", "sine"])
def test_synthetic_sets_are_fixed(name):
    a, b = BUILTIN[name](), BUILTIN[name]()
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.x.dtype == np.float32 and len(a.x) == 1000


def test_xor_labels_and_sine_targets():
    raw = load_raw("xor")
    corner = np.rint(raw.x).astype(int)
    assert (corner[:, 0] ^ corner[:, 1] == raw.y).mean() > 0.99
    raw = load_raw("sine")
    assert raw.task == "regression" and raw.y.shape == (1000, 1)
    assert np.abs(raw.y - np.sin(raw.x)).std() < 0.12


def test_fixed_split_sizes_and_disjointness():
    tr, va, te = split_indices(1797)
    assert (len(tr), len(va), len(te)) == (1258, 180, 359)
    assert len(np.unique(np.concatenate([tr, va, te]))) == 1797
    np.testing.assert_array_equal(split_indices(1797)[2], te)


def test_load_dataset_digits_split_and_normalization():
    d = load_dataset("digits")
    assert (len(d.train), len(d.val), len(d.test)) == (1258, 180, 359)
    assert d.input_shape == (1, 8, 8) and d.num_outputs == 10 and d.task == "classification"
    x = d.train.arrays[0]
    assert x.dtype == np.float32 and abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-4
    assert isinstance(d.mean, float) and isinstance(d.std, float)
    again = load_dataset("digits", mean=d.mean, std=d.std)
    np.testing.assert_array_equal(again.test.arrays[0], d.test.arrays[0])
    raw = load_dataset("digits", normalize_inputs=False)
    assert raw.mean is None and raw.train.arrays[0].max() == 1


def test_load_dataset_tabular_normalizes_per_feature():
    d = load_dataset("iris")
    assert len(d.mean) == 4 and d.input_shape == (4,) and d.classes == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(d.train.arrays[0].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.train.arrays[0].std(axis=0), 1, atol=1e-4)


def test_unknown_dataset_and_missing_file():
    with pytest.raises(DataError, match=r"unknown data set 'digitz'.*digits, iris"):
        load_dataset("digitz")
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        load_dataset("nope.csv")
    with pytest.raises(DataError, match=r"no/such/folder: no such file or folder"):
        load_dataset("no/such/folder")
