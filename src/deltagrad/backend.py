"""The array backend: the one place that knows which array library holds the numbers.

Ops call NumPy's functions through ``xp``. NumPy's ufuncs and array functions dispatch on the array type
(``__array_ufunc__`` / ``__array_function__``), so a CuPy array passed through them stays on the GPU; what
does not dispatch that way (array creation, sliding windows, scatter-add, copying to host) lives here, and
a second backend overrides only these few kernels. No derivative lives in this file.
"""

from __future__ import annotations

from typing import Any

import numpy

xp = numpy

#: dtypes by PyTorch's names, so ``deltagrad.float32`` reads like ``torch.float32``
float16 = numpy.dtype(numpy.float16)
float32 = numpy.dtype(numpy.float32)
float64 = numpy.dtype(numpy.float64)
int32 = numpy.dtype(numpy.int32)
int64 = numpy.dtype(numpy.int64)
uint8 = numpy.dtype(numpy.uint8)
bool_ = numpy.dtype(numpy.bool_)

default_float = float32


def is_array(x: Any) -> bool:
    return isinstance(x, numpy.ndarray)


def is_floating(dtype: numpy.dtype) -> bool:
    return dtype.kind == "f"


def as_array(data: Any, dtype: Any = None) -> numpy.ndarray:
    """Convert user data to an array: Python floats become float32, arrays keep their dtype."""
    if isinstance(data, numpy.ndarray):
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if dtype is not None:
        return numpy.asarray(data, dtype=dtype)
    arr = numpy.asarray(data)
    if arr.dtype == numpy.float64 and not isinstance(data, numpy.generic):
        arr = arr.astype(default_float)
    elif arr.dtype.kind in "US" or arr.dtype == object:
        raise TypeError(f"cannot make a tensor from {type(data).__name__} data of dtype {arr.dtype}")
    return arr


def to_numpy(a: numpy.ndarray) -> numpy.ndarray:
    """A host (NumPy) copy-free view of an array."""
    return a


try:  # NumPy 2 keeps its floating-point error state in a context variable: setting it directly is cheap
    from numpy._core._ufunc_config import _extobj_contextvar as _fp_state

    with numpy.errstate(all="ignore"):
        _FP_QUIET = _fp_state.get()
except ImportError:  # pragma: no cover - older or future NumPy: the public (slower) way
    _fp_state = None


if _fp_state is not None:

    def quiet_floating_point() -> Any:
        """Stop NumPy warning about inf/NaN (they propagate silently, as in PyTorch); returns a restore token.

        Every op call and every backward pass runs inside this; the user's own NumPy code keeps its settings.
        """
        return _fp_state.set(_FP_QUIET)

    restore_floating_point = _fp_state.reset
else:  # pragma: no cover

    def quiet_floating_point() -> Any:
        state = numpy.errstate(all="ignore")
        state.__enter__()
        return state

    def restore_floating_point(token: Any) -> None:
        token.__exit__(None, None, None)


def zeros(shape: tuple[int, ...], dtype: Any) -> numpy.ndarray:
    return numpy.zeros(shape, dtype=dtype)


def sliding_windows(x: numpy.ndarray, window: tuple[int, ...], axes: tuple[int, ...]) -> numpy.ndarray:
    """A read-only strided view of every window of ``x`` along ``axes`` (im2col without copying)."""
    return numpy.lib.stride_tricks.sliding_window_view(x, window, axis=axes)


def scatter_add(target: numpy.ndarray, index: Any, values: numpy.ndarray) -> None:
    """``target[index] += values`` with repeated indices summed (unbuffered)."""
    numpy.add.at(target, index, values)
