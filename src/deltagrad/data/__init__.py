"""deltagrad.data: datasets and minibatches with PyTorch's names, and the data sets deltagrad ships or reads.

``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``, ``random_split``, ``DataLoader``;
``load_dataset(spec)`` gives the fixed train/validation/test split of a built-in set (``digits`` — the
default —, ``iris``, ``xor``, ``spirals``, ``sine``), a numeric CSV file or a folder of MNIST IDX files.

>>> from deltagrad.data import DataLoader, load_dataset
>>> d = load_dataset("digits")
>>> for x, y in DataLoader(d.train, batch_size=32, shuffle=True): ...
"""

from deltagrad.data.builtin import BUILTIN, RawData
from deltagrad.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from deltagrad.data.errors import DataError
from deltagrad.data.files import csv_file, mnist_folder, read_csv_table, read_idx, read_inputs_file
from deltagrad.data.loader import DataLoader, default_collate
from deltagrad.data.sets import (
    DataSplits,
    as_inputs,
    fit_normalization,
    load_dataset,
    load_raw,
    normalize,
    split_indices,
    split_summary,
    split_warnings,
)

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader", "default_collate",
           "DataError", "DataSplits", "RawData", "BUILTIN", "load_dataset", "load_raw", "split_indices",
           "split_summary", "split_warnings", "as_inputs", "fit_normalization", "normalize", "read_idx",
           "read_csv_table", "read_inputs_file", "csv_file", "mnist_folder"]
