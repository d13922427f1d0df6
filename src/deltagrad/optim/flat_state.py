"""State dicts without pickle: split into arrays (for safetensors) and JSON (for everything else), and back.

An optimizer's or a scheduler's ``state_dict()`` mixes arrays (moment buffers) with scalars, lists, tuples,
dicts keyed by ints, and floats such as ``inf``. ``state_to_flat`` turns it into

* ``arrays``: ``{name: ndarray}`` with a name for each array from its place in the dict
  (``'state.0.exp_avg'``), ready for ``deltagrad.save(arrays, path)`` / ``safetensors.numpy.save_file``;
* ``meta``: a JSON-able structure (``json.dumps(meta, allow_nan=False)`` works) in which each array is a
  reference ``{"__tensor__": name}`` (or ``{"__array__": name}`` for a plain ndarray), a tuple is
  ``{"__tuple__": [...]}``, a dict with int keys is ``{"__int_keys__": {"0": ...}}``, another non-string-keyed
  dict is ``{"__items__": [[key, value], ...]}`` and a non-finite float is ``{"__float__": "inf"}``.

``state_from_flat(arrays, meta)`` inverts it exactly. Example (a checkpoint of an optimizer)::

    arrays, meta = optimizer_state_to_flat(opt.state_dict())
    deltagrad.save(arrays, "optim.safetensors", metadata={"optimizer": json.dumps(meta)})
    ...
    arrays = safetensors.numpy.load_file("optim.safetensors"); meta = json.loads(<metadata>["optimizer"])
    opt.load_state_dict(optimizer_state_from_flat(arrays, meta))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from deltagrad.tensor import Tensor

_MARKERS = ("__tensor__", "__array__", "__tuple__", "__int_keys__", "__items__", "__float__")


def state_to_flat(obj: Any, prefix: str = "") -> tuple[dict[str, np.ndarray], Any]:
    """Split ``obj`` (nested dicts/lists/tuples of Tensors, arrays and scalars) into ``(arrays, meta)``."""
    arrays: dict[str, np.ndarray] = {}
    meta = _encode(obj, prefix, arrays)
    return arrays, meta


def state_from_flat(arrays: Mapping[str, np.ndarray], meta: Any) -> Any:
    """The object that ``state_to_flat`` split into ``(arrays, meta)``; arrays are not copied."""
    return _decode(meta, arrays)


def optimizer_state_to_flat(state_dict: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """An optimizer's ``state_dict()`` as ``(arrays, meta)``: arrays named ``'state.<index>.<key>'``."""
    if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
        raise ValueError("an optimizer state dict needs the keys 'state' and 'param_groups'")
    return state_to_flat(state_dict)


def optimizer_state_from_flat(arrays: Mapping[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
    """The optimizer state dict that ``optimizer_state_to_flat`` split, ready for ``load_state_dict``."""
    sd = state_from_flat(arrays, meta)
    if not isinstance(sd, dict) or "state" not in sd or "param_groups" not in sd:
        raise ValueError("the flat data does not describe an optimizer state dict ('state', 'param_groups')")
    return sd


def _name(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, Tensor | np.ndarray):
        name, n = path or "_", 1
        while name in arrays:  # two paths that print alike ('a.b' as one key or two) get distinct names
            name, n = f"{path}#{n}", n + 1
        arr = obj.data if isinstance(obj, Tensor) else obj
        arrays[name] = arr if arr.flags.c_contiguous else np.array(arr, order="C")  # keeps 0-d arrays 0-d
        return {"__tensor__" if isinstance(obj, Tensor) else "__array__": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, _name(path, i), arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, _name(path, i), arrays) for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        keys = list(obj.keys())
        if all(isinstance(k, str) for k in keys) and not any(k in _MARKERS for k in keys):
            return {k: _encode(v, _name(path, k), arrays) for k, v in obj.items()}
        if all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
            return {"__int_keys__": {str(k): _encode(v, _name(path, k), arrays) for k, v in obj.items()}}
        return {"__items__": [[_encode(k, _name(path, f"key{i}"), arrays),
                               _encode(v, _name(path, i), arrays)] for i, (k, v) in enumerate(obj.items())]}
    raise TypeError(f"cannot store {type(obj).__name__} at '{path or '<root>'}' without pickle: "
                    "state must be Tensors, arrays, numbers, strings, None, lists, tuples and dicts")


def _decode(meta: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(meta, list):
        return [_decode(v, arrays) for v in meta]
    if not isinstance(meta, dict):
        return meta
    if len(meta) == 1:
        (tag, value), = meta.items()
        if tag in ("__tensor__", "__array__"):
            if value not in arrays:
                raise KeyError(f"the flat state refers to an array '{value}' that is not among the arrays")
            arr = arrays[value]
            arr = arr.data if isinstance(arr, Tensor) else np.asarray(arr)
            return Tensor(arr) if tag == "__tensor__" else arr
        if tag == "__tuple__":
            return tuple(_decode(v, arrays) for v in value)
        if tag == "__int_keys__":
            return {int(k): _decode(v, arrays) for k, v in value.items()}
        if tag == "__items__":
            return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in value}
        if tag == "__float__":
            return float(value)
    return {k: _decode(v, arrays) for k, v in meta.items()}


def _hashable(k: Any) -> Any:
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k
