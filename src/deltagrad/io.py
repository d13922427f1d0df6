"""``save`` / ``load``: state dicts as safetensors files — plain arrays, never pickle.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's dtype, shape and
byte range, plus optional ``__metadata__`` of str → str) and the raw little-endian bytes. It holds no code,
so loading a file cannot run anything; PyTorch, JAX and others read it too. ``save`` writes atomically (a
temporary file in the same folder, flushed to disk, then renamed over the target), so a crash leaves the
old file or the new one, never half of one. ``load`` checks the file before reading it and refuses pickles
(PyTorch ``.pt``/``.pth`` zip or legacy files, raw pickles) without executing them.

>>> deltagrad.save(model.state_dict(), "model.safetensors")
>>> model.load_state_dict(deltagrad.load("model.safetensors"))
>>> state = deltagrad.load("model.safetensors", expected=model)   # checks keys and shapes, naming the bad key

Training state (optimizer and scheduler state dicts, counters) goes through ``save_state`` / ``load_state``:
its arrays become the file's tensors and everything else JSON in the file's metadata (``state_to_flat``).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import safetensors.numpy

from deltagrad.autograd.grad_mode import no_grad
from deltagrad.optim.flat_state import state_from_flat, state_to_flat
from deltagrad.tensor import Tensor

__all__ = ["save", "load", "dumps", "loads", "read_regular_file", "atomic_write", "load_metadata", "load_into",
           "check_state_dict", "save_state", "load_state",
           "CheckpointFileError",
           "PickleRefusedError", "StateDictMismatchError", "IncompatibleKeys"]

PathLike = str | os.PathLike

#: metadata key under which ``save`` records the order of the keys (JSON list), so ``load`` keeps it
ORDER_KEY = "deltagrad.keys"
#: metadata key under which ``save_state`` stores the JSON part of a state
STATE_KEY = "deltagrad.state"
#: metadata key of the SHA-256 (hex) of the file's data section, written by ``save`` and checked by ``load``
CHECKSUM_KEY = "deltagrad.sha256"

_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "F32": 4,
           "U64": 8, "I64": 8, "F64": 8, "C64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
_MAX_HEADER = 100_000_000  # the limit safetensors itself enforces


class CheckpointFileError(ValueError):
    """A file that is not a readable safetensors file (truncated, corrupt, or another format)."""

    def __init__(self, path: PathLike, problem: str) -> None:
        self.filename = os.fspath(path)
        super().__init__(f"{self.filename}: {problem}")


class PickleRefusedError(CheckpointFileError):
    """A pickle-based file (PyTorch ``.pt``/``.pth``, ``pickle.dump``): refused, never unpickled."""


class StateDictMismatchError(RuntimeError):
    """A state dict whose keys or shapes do not match what was expected."""

    def __init__(self, message: str, missing_keys: list[str], unexpected_keys: list[str],
                 shape_mismatches: list[tuple[str, tuple, tuple]]) -> None:
        super().__init__(message)
        self.missing_keys, self.unexpected_keys, self.shape_mismatches = missing_keys, unexpected_keys, shape_mismatches


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


# -- saving ----------------------------------------------------------------------------------------------------
def save(obj: Any, path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write a state dict (``{name: Tensor or ndarray}``, or an object with ``state_dict()``) to ``path``.

    ``metadata``: optional str → str pairs stored in the file's header (encode other values with
    ``json.dumps``); read them back with ``load_metadata``. The key order is kept, and a SHA-256 checksum of
    the tensor data is recorded, which ``load`` verifies. The write is atomic.
    """
    atomic_write(path, dumps(obj, metadata))


def dumps(obj: Any, metadata: Mapping[str, str] | None = None) -> bytes:
    """The bytes of the safetensors file that ``save(obj, path, metadata)`` writes."""
    if not isinstance(obj, Mapping) and callable(getattr(obj, "state_dict", None)):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save() needs a state dict (a mapping of names to tensors) or an object with "
                        f"state_dict(), not {type(obj).__name__}")
    tensors: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"state dict keys must be strings, got {key!r} ({type(key).__name__})")
        tensors[key] = _as_saveable(key, value)
    meta: dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata must map str to str; the entry {k!r} has a {type(v).__name__} value "
                            "(store other values as json.dumps(value))")
        meta[k] = v
    meta.setdefault(ORDER_KEY, json.dumps(list(tensors)))
    return _with_checksum(safetensors.numpy.save(tensors, metadata=meta))


def _with_checksum(data: bytes) -> bytes:
    """``data`` (a safetensors file) with the SHA-256 of its data section added to the header's metadata and
    the header in a fixed order, so that the same state dict always gives the same bytes; the data section
    itself is unchanged (its offsets are relative to it)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    meta[CHECKSUM_KEY] = hashlib.sha256(memoryview(data)[8 + n:]).hexdigest()
    # one order for the same contents (the library's own header order varies from call to call)
    header = {"__metadata__": dict(sorted(meta.items())),
              **dict(sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0], kv[0])))}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # safetensors keeps the data section 8-byte aligned
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def _as_saveable(key: str, value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    elif isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"state dict entry '{key}' is a {type(value).__name__}; only Tensors and arrays can be "
                        "saved (store other values in metadata)")
    if value.dtype.kind not in "biuf":
        raise TypeError(f"state dict entry '{key}' has dtype {value.dtype}, which safetensors cannot store")
    if value.dtype.byteorder == ">":
        value = value.astype(value.dtype.newbyteorder("<"))
    # np.ascontiguousarray would turn a 0-d array into shape (1,)
    return value if value.flags.c_contiguous else np.array(value, order="C")


def atomic_write(path: PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never a part: a temporary
    file in the same folder, flushed to disk, then renamed over the target, and the rename made durable."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path}: the folder {folder} does not exist")
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it an ordinary file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_folder(folder)


def fsync_folder(folder: PathLike) -> None:
    """Make the entries of ``folder`` (a rename, a new file) durable; a no-op where folders cannot be opened."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# -- loading ---------------------------------------------------------------------------------------------------
def load(path: PathLike, expected: Any = None) -> OrderedDict[str, Tensor]:
    """Read a safetensors file: an ordered dict name → Tensor, in the order the tensors were saved.

    ``expected``: optionally a state dict, a module (anything with ``state_dict()``), a mapping name → shape,
    or a list of names; the loaded keys (and shapes) must match it, else ``StateDictMismatchError`` names
    the missing, unexpected and mis-shaped keys. A missing file raises FileNotFoundError; a truncated or
    corrupt file, a file whose data no longer matches its recorded checksum, a FIFO or device, or another
    format ``CheckpointFileError``; a pickle ``PickleRefusedError`` (never executed).
    """
    return loads(read_regular_file(path), os.fspath(path), expected)


def loads(data: bytes, name: str = "<bytes>", expected: Any = None) -> OrderedDict[str, Tensor]:
    """``load`` of the bytes of a safetensors file (``name`` is used in messages)."""
    header = _parse_header(name, data)
    meta = header.get("__metadata__") or {}
    n = int.from_bytes(data[:8], "little")
    if CHECKSUM_KEY in meta and hashlib.sha256(memoryview(data)[8 + n:]).hexdigest() != meta[CHECKSUM_KEY]:
        raise CheckpointFileError(name, "checksum mismatch: the tensor data is not what was saved (the file was "
                                        "damaged or changed since)")
    try:
        arrays = safetensors.numpy.load(data)
    except Exception as e:  # the library's own error types vary by version
        raise CheckpointFileError(name, f"cannot read the safetensors data: {e}") from e
    order = _key_order(header)
    out: OrderedDict[str, Tensor] = OrderedDict((k, Tensor(arrays[k])) for k in order)
    if expected is not None:
        check_state_dict(expected, out, strict=True, source=name)
    return out


def read_regular_file(path: PathLike, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``. A FIFO, device or socket is refused without blocking on it,
    a folder too (``IsADirectoryError``); a missing file raises ``FileNotFoundError``; a file larger than
    ``limit`` bytes is refused."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{name} is a folder, not a file") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(f"{name} is a folder, not a file")
        raise CheckpointFileError(name, "not a regular file (a FIFO, device or socket); refused")
    with os.fdopen(fd, "rb") as f:
        if limit is not None and info.st_size > limit:
            raise CheckpointFileError(name, f"{info.st_size:,} bytes is more than this file can be ({limit:,})")
        return f.read()


def load_metadata(path: PathLike) -> dict[str, str]:
    """The str → str metadata stored in a safetensors file's header (without reading the tensors)."""
    meta = dict(_read_header(path).get("__metadata__") or {})
    for key in (ORDER_KEY, STATE_KEY, CHECKSUM_KEY):
        meta.pop(key, None)
    return meta


def _key_order(header: dict[str, Any]) -> list[str]:
    keys = [k for k in header if k != "__metadata__"]
    saved = (header.get("__metadata__") or {}).get(ORDER_KEY)
    if saved is not None:
        try:
            order = json.loads(saved)
        except ValueError:
            order = None
        if isinstance(order, list) and sorted(order) == sorted(keys):
            return order
    return sorted(keys, key=lambda k: (header[k]["data_offsets"][0], k))


def _read_header(path: PathLike) -> dict[str, Any]:
    """Validate the framing of a safetensors file and return its header; name the problem and the file."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise IsADirectoryError(f"{name} is a folder, not a safetensors file")
    # read the header only: the first 16 bytes say how long it is
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {name}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise CheckpointFileError(name, "not a regular file (a FIFO, device or socket); refused")
    with os.fdopen(fd, "rb") as f:
        size = info.st_size
        head = f.read(16)
        n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
        raw = head + f.read(max(0, min(n, _MAX_HEADER) + 8 - len(head)))
    return _parse_header(name, raw, size)


def _parse_header(name: str, data: bytes, size: int | None = None) -> dict[str, Any]:
    """The header of the safetensors file whose first bytes are ``data`` (all of it unless ``size`` is given)."""
    size = len(data) if size is None else size
    head = data[:16]
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    looks_safetensors = len(head) > 8 and head[8:9] == b"{" and 2 <= n <= _MAX_HEADER
    if not looks_safetensors:
        raise _sniff(name, head, size)
    if 8 + n > size:
        raise CheckpointFileError(name, f"truncated: the header needs {n} bytes but the file has only {size - 8} "
                                        "after the length field")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointFileError(name, f"corrupt safetensors header (not valid JSON: {e})") from None
    if not isinstance(header, dict):
        raise CheckpointFileError(name, "corrupt safetensors header (not a JSON object)")
    data_size = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            if info is not None and not (isinstance(info, dict) and all(isinstance(v, str) for v in info.values())):
                raise CheckpointFileError(name, "corrupt safetensors header (__metadata__ must map str to str)")
            continue
        _check_entry(name, key, info, data_size)
    return header


def _check_entry(name: str, key: str, info: Any, data_size: int) -> None:
    try:
        dtype, shape, (begin, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise CheckpointFileError(name, f"corrupt safetensors header: entry '{key}' lacks dtype/shape/data_offsets") \
            from None
    if dtype not in _DTYPES:
        raise CheckpointFileError(name, f"tensor '{key}' has an unknown dtype {dtype!r}")
    if end > data_size:
        raise CheckpointFileError(name, f"truncated: tensor '{key}' needs bytes up to {end} of the data section, "
                                        f"but it has only {data_size}")
    if not 0 <= begin <= end or end - begin != int(np.prod(shape)) * _DTYPES[dtype]:
        raise CheckpointFileError(name, f"corrupt safetensors header: the byte range of tensor '{key}' does not "
                                        f"match its shape {tuple(shape)} and dtype {dtype}")


def _sniff(name: str, head: bytes, size: int) -> CheckpointFileError:
    """Say what a file that is not safetensors seems to be."""
    if head.startswith(b"PK\x03\x04"):
        return PickleRefusedError(name, "this is a zip archive such as a PyTorch .pt/.pth checkpoint, which holds "
                                        "a pickle; it is refused, never unpickled. Convert it once with PyTorch: "
                                        "safetensors.torch.save_file(torch.load(f, weights_only=True), out)")
    if len(head) >= 2 and head[0] == 0x80 and 1 <= head[1] <= 5:
        return PickleRefusedError(name, f"this is a Python pickle (protocol {head[1]}), e.g. a legacy PyTorch "
                                        "checkpoint; it is refused, never unpickled: pickles can run code")
    if head.startswith(b"\x93NUMPY"):
        return CheckpointFileError(name, "this is a NumPy .npy file, not a safetensors file")
    if size < 8:
        return CheckpointFileError(name, f"truncated: {size} bytes is too short for a safetensors file")
    if head[:1] in (b"(", b"}", b"]") and head[1:2] in (b"d", b"l", b"q", b"p", b"}", b"]", b"\x00"):
        return PickleRefusedError(name, "this looks like a Python pickle (protocol 0/1); it is refused, never "
                                        "unpickled")
    return CheckpointFileError(name, "not a safetensors file (no valid header length and JSON header)")


# -- training state ------------------------------------------------------------------------------------------------
def save_state(state: Any, path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write any nest of dicts/lists/tuples of Tensors, arrays, numbers and strings — e.g.
    ``{'optimizer': opt.state_dict(), 'scheduler': sched.state_dict(), 'epoch': 3}`` — to one safetensors
    file: the arrays as its tensors, the rest as JSON in its metadata. Atomic, without pickle.

    >>> deltagrad.io.save_state({"optimizer": opt.state_dict(), "epoch": 3}, "train_state.safetensors")
    >>> opt.load_state_dict(deltagrad.io.load_state("train_state.safetensors")["optimizer"])
    """
    arrays, meta = state_to_flat(state)
    extra = dict(metadata or {})
    extra[STATE_KEY] = json.dumps(meta, allow_nan=False)
    save(arrays, path, metadata=extra)


def load_state(path: PathLike) -> Any:
    """The state written by ``save_state`` (its arrays as Tensors, or ndarrays where ndarrays were saved)."""
    header = _read_header(path)
    text = (header.get("__metadata__") or {}).get(STATE_KEY)
    if text is None:
        raise CheckpointFileError(path, f"no training state in this file (its metadata has no '{STATE_KEY}'); "
                                        "was it written by deltagrad.io.save_state?")
    try:
        meta = json.loads(text)
        return state_from_flat(load(path), meta)
    except (ValueError, KeyError) as e:
        raise CheckpointFileError(path, f"corrupt training state: {e}") from e


# -- checking ----------------------------------------------------------------------------------------------------
def _shapes(obj: Any) -> dict[str, tuple | None]:
    """A name → shape (None: any shape) view of a state dict, module, shape mapping or list of names."""
    if not isinstance(obj, Mapping) and callable(getattr(obj, "state_dict", None)):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if isinstance(v, Tensor | np.ndarray | np.generic):
                out[k] = tuple(np.shape(v.data if isinstance(v, Tensor) else v))
            elif isinstance(v, tuple | list):
                out[k] = tuple(int(s) for s in v)
            else:
                out[k] = None
        return out
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        return {k: None for k in obj}
    raise TypeError(f"cannot read names and shapes from {type(obj).__name__}")


def check_state_dict(expected: Any, loaded: Any, strict: bool = True, source: str | None = None) -> IncompatibleKeys:
    """Compare ``loaded`` with ``expected`` (state dicts, modules, name → shape mappings or lists of names).

    Shapes must always agree; with ``strict`` the key sets must too. Raises ``StateDictMismatchError``
    naming every missing, unexpected and mis-shaped key; returns ``(missing_keys, unexpected_keys)``.
    """
    want, got = _shapes(expected), _shapes(loaded)
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    mismatched = [(k, got[k], want[k]) for k in want
                  if k in got and want[k] is not None and got[k] is not None and got[k] != want[k]]
    problems = []
    if strict and missing:
        problems.append("Missing key(s): " + ", ".join(f'"{k}"' for k in missing) + ".")
    if strict and unexpected:
        problems.append("Unexpected key(s): " + ", ".join(f'"{k}"' for k in unexpected) + ".")
    for k, g, w in mismatched:
        problems.append(f'size mismatch for "{k}": the loaded tensor has shape {g}, the expected shape is {w}.')
    if problems:
        where = f" from {source}" if source else ""
        raise StateDictMismatchError(f"Error(s) in loading state dict{where}:\n\t" + "\n\t".join(problems),
                                     missing, unexpected, mismatched)
    return IncompatibleKeys(missing, unexpected)


def load_into(target: Any, path: PathLike, strict: bool = True) -> IncompatibleKeys:
    """Load the file at ``path`` into a module (via its ``load_state_dict``) or, in place, into a state dict
    of Tensors/arrays (cast to each target's dtype). Keys and shapes are checked first (keys only if
    ``strict``), naming the offending key and the file."""
    loaded = load(path)
    result = check_state_dict(target, loaded, strict=strict, source=os.fspath(path))
    if not isinstance(target, Mapping) and callable(getattr(target, "load_state_dict", None)):
        if strict:
            out = target.load_state_dict(loaded)
        else:
            out = target.load_state_dict(loaded, strict=False)
        return out if isinstance(out, tuple) and len(out) == 2 else result
    if not isinstance(target, Mapping):
        raise TypeError(f"load_into() needs a module or a state dict, not {type(target).__name__}")
    with no_grad():
        for k, t in loaded.items():
            if k not in target:
                continue
            dst = target[k]
            if isinstance(dst, Tensor):
                dst.data[...] = t.data.astype(dst.dtype, copy=False)
                dst._version[0] += 1
            elif isinstance(dst, np.ndarray):
                dst[...] = t.data
            else:
                raise TypeError(f"cannot load into entry '{k}' of type {type(dst).__name__}")
    return result
