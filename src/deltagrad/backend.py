"""The array backend: the one place that knows which array library holds the numbers.

Ops call NumPy's functions through ``xp``. NumPy's ufuncs and array functions dispatch on the array type
(``__array_ufunc__`` / ``__array_function__``), so a CuPy array passed through them stays on the GPU; what
does not dispatch that way (array creation, sliding windows, scatter-add, copying to host) lives here, and
a second backend overrides only these few kernels. No derivative lives in this file.
"""

from __future__ import annotations

import os
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


def keep_freed_memory(enable: bool = True) -> bool:
    """Let the C allocator keep freed blocks for reuse instead of returning them to the system at once.

    glibc hands every block over 128 KiB back to the kernel when it is freed, so each new activation of a
    training step is page-faulted in again: about two thirds of a LeNet step's time on a CPU. Raising the
    mmap and trim thresholds keeps those blocks in the process for the next step, as PyTorch's caching
    allocator does. Called once at import; ``DELTAGRAD_KEEP_FREED_MEMORY=0`` in the environment turns it off.
    Returns whether the setting took effect (only on glibc).
    """
    if not enable:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameters
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 128 << 20))
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to tune
        return False


allocator_tuned = keep_freed_memory(os.environ.get("DELTAGRAD_KEEP_FREED_MEMORY", "1") != "0")


# ---- optional native kernels (src/deltagrad/_native.c) ----------------------------------------------------
# Each does the work of several NumPy calls in one, on NumPy arrays; the functions below that use them do the
# same in NumPy where the module was not built, DELTAGRAD_NATIVE=0, or the arrays are of another kind.
NATIVE_KERNELS_VERSION = 2  # the KERNELS_VERSION of _native.c that this file calls
try:
    from deltagrad import _native as native
except ImportError:  # pragma: no cover - built by pip wherever a C compiler is found
    native = None
if native is not None and getattr(native, "KERNELS_VERSION", None) != NATIVE_KERNELS_VERSION:
    import warnings

    warnings.warn("deltagrad._native was built from other source than this deltagrad's (run `pip install -e .` "
                  "again to rebuild it); NumPy does its work meanwhile", RuntimeWarning, stacklevel=2)
    native = None
if os.environ.get("DELTAGRAD_NATIVE", "1") == "0":
    native = None
_NATIVE_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_NATIVE_INTS = (numpy.dtype(numpy.int32), numpy.dtype(numpy.int64))


# ---- in-place y ← αx + βy for optimizers: BLAS on large arrays ---------------------------------------------
# An optimizer's update of a large parameter is memory-bound: NumPy's `b *= m; b += g; p -= lr * b` makes
# four passes (one through a temporary) on one core, where BLAS's axpby and axpy make two, axpy on every core
# (a 400k-element momentum step: 52 µs against 124). NumPy does not export them, so they are called in the
# OpenBLAS that NumPy's own wheels load (ILP64, symbols `scipy_cblas_?axpby64_`, `scipy_cblas_?axpy64_`);
# where that library is not found (another build, another backend), NumPy does the same in its four passes.


def _load_blas() -> dict:
    """{(name, dtype): function} for axpby and axpy in NumPy's OpenBLAS, or {} where it is not found."""
    import ctypes
    import glob

    here = os.path.dirname(numpy.__file__)
    for path in sorted(glob.glob(os.path.join(here, os.pardir, "numpy.libs", "*openblas64*")) +
                       glob.glob(os.path.join(here, ".dylibs", "*openblas64*"))):
        kernels: dict = {}
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: this only looks up its symbols
            for dtype, real, code in ((float32, ctypes.c_float, "s"), (float64, ctypes.c_double, "d")):
                n, ptr = ctypes.c_int64, ctypes.c_void_p
                for name, argtypes in (("axpby", [n, real, ptr, n, real, ptr, n]), ("axpy", [n, real, ptr, n, ptr, n])):
                    fn = getattr(lib, f"scipy_cblas_{code}{name}64_")
                    fn.restype, fn.argtypes = None, argtypes
                    kernels[name, dtype] = fn
            return kernels
        except (OSError, AttributeError):
            continue
    return {}


_blas = _load_blas() if os.environ.get("DELTAGRAD_BLAS_AXPBY", "1") != "0" else {}
BLAS_AXPBY_MIN = 1 << 15  # elements: below this the foreign call costs more than NumPy's passes


def axpby(alpha: Any, x: numpy.ndarray, beta: Any, y: numpy.ndarray) -> None:
    """``y ← alpha·x + beta·y`` in place (``y`` the running buffer or parameter, ``x`` the same shape).

    ``alpha`` and ``beta`` are scalars of y's dtype. Large contiguous float32/float64 arrays go through BLAS
    (OpenBLAS threads axpy, the β = 1 case, but not axpby); BLAS may fuse a multiply-add, so the last bit can
    differ from NumPy's rounding of each product. A zero factor takes NumPy's path, so that 0·NaN stays NaN
    as in PyTorch.
    """
    if (y.size >= BLAS_AXPBY_MIN and _blas and alpha and beta and x.dtype == y.dtype and x.shape == y.shape
            and x.flags.c_contiguous and y.flags.c_contiguous and y.flags.writeable and y.dtype in _NATIVE_FLOATS):
        if beta == 1:
            _blas["axpy", y.dtype](y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
        else:
            _blas["axpby", y.dtype](y.size, alpha, x.ctypes.data, 1, beta, y.ctypes.data, 1)
        return
    if beta != 1:
        y *= beta
    y += x if alpha == 1 else alpha * x


def sgd_momentum_(params: list, grads: list, bufs: list, lr: float, momentum: float, dampening: float,
                  nesterov: bool) -> None:
    """SGD with momentum on many arrays at once, in place: for each parameter p, gradient g and buffer b,
    ``b ← momentum·b + (1 − dampening)·g``, then ``p ← p − lr·(g + momentum·b if nesterov else b)``.

    One native call does them all where ``_native`` is built (the same roundings as NumPy's passes);
    NumPy does them array by array otherwise, or where the arrays are not all of one float dtype.
    """
    if native is not None:
        try:
            return native.sgd_momentum(params, grads, bufs, lr, momentum, dampening, nesterov)
        except TypeError:  # mixed dtypes, a read-only or non-contiguous array: checked before any write
            pass
    for p, g, b in zip(params, grads, bufs):
        cast = p.dtype.type
        axpby(cast(1 - dampening), g, cast(momentum), b)
        axpby(cast(-lr), g + cast(momentum) * b if nesterov else b, cast(1), p)


def adam_(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, max_exp_avg_sqs: list | None,
          step_sizes: list[float], bc2_sqrts: list[float], beta1: float, beta2: float, eps: float) -> None:
    """Adam's update of many arrays at once, in place, PyTorch's formula: for each parameter p with gradient g,
    ``m ← m + (1 − β₁)(g − m)`` (lerp), ``v ← β₂ v + (1 − β₂) g²``, ``v̂ ← max(v̂, v)`` with amsgrad (else v),
    ``p ← p − step_size · m / (√v̂ / bc2_sqrt + eps)`` with that parameter's step size lr/(1 − β₁ᵗ) and
    bc2_sqrt = √(1 − β₂ᵗ). One native call where ``_native`` is built (the same roundings); else NumPy.
    """
    if native is not None:
        try:
            return native.adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step_sizes, bc2_sqrts,
                               beta1, beta2, eps)
        except TypeError:  # mixed dtypes, a read-only or non-contiguous array: checked before any write
            pass
    for k, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * (g * g)
        if max_exp_avg_sqs is not None:
            v = numpy.maximum(max_exp_avg_sqs[k], v, out=max_exp_avg_sqs[k])
        denom = numpy.sqrt(v) / bc2_sqrts[k]
        denom += eps
        p -= step_sizes[k] * (m / denom)


def softmax_cross_entropy(x: numpy.ndarray, t: numpy.ndarray, per_row: bool) -> tuple | None:
    """Softmax cross-entropy of logits ``x`` (N, C) against class indices ``t`` (N,), the hot loop of a
    classifier's step: with z = x − max_c x, e = exp z and Σe its row sums, ℓᵢ = log Σeᵢ − zᵢ[tᵢ].

    Returns ``(ℓ or Σᵢ ℓᵢ, e, Σe)``: the row losses if ``per_row``, else their sum (a Python float natively,
    a NumPy scalar otherwise); None when a target is outside [0, C) (the caller's general path handles it).
    """
    n, c = x.shape
    if (native is not None and type(x) is numpy.ndarray and x.dtype in _NATIVE_FLOATS and x.flags.c_contiguous
            and t.dtype in _NATIVE_INTS):
        e, sum_e = numpy.empty_like(x), numpy.empty(n, x.dtype)
        loss = numpy.empty(n, x.dtype) if per_row else None
        total = native.softmax_xent_forward(x, numpy.ascontiguousarray(t), e, sum_e, loss)
        return None if total is None else (loss if per_row else total, e, sum_e)
    if not bool(numpy.maximum.reduce(t.view(_UNSIGNED[t.itemsize]) if t.dtype.kind == "i" else t) < c):
        return None  # one reduction: negative integers viewed as unsigned are huge
    if c <= 128 and n >= 16:
        # few classes: the row maxima as a reduction down xᵀ made contiguous, since NumPy reduces each short
        # row in a loop of its own (32×10: 1.3 µs against 2.1; 128×10: 1.6 against 6.0; 1000 classes lose)
        z = x - numpy.maximum.reduce(numpy.ascontiguousarray(x.T), axis=0)[:, None]
    else:
        z = x - x.max(axis=1, keepdims=True)
    e = numpy.exp(z)
    # Σ_c e as e @ ones: BLAS sums short rows faster than NumPy's row reduction (32×10: 0.5 µs against 1.2)
    sum_e = numpy.dot(e, ones(c, e.dtype))
    loss = numpy.log(sum_e) - z[arange(n), t]
    return (loss if per_row else loss.sum(), e, sum_e)


def softmax_cross_entropy_backward(e: numpy.ndarray, sum_e: numpy.ndarray, t: numpy.ndarray, s: Any) -> Any:
    """``(softmax − onehot(t)) · s`` from the forward's e and Σe (``s`` a scalar, or one factor per row)."""
    if (native is not None and type(e) is numpy.ndarray and numpy.ndim(s) == 0 and e.dtype in _NATIVE_FLOATS
            and t.dtype in _NATIVE_INTS and e.flags.c_contiguous):
        dx = numpy.empty_like(e)
        native.softmax_xent_backward(e, sum_e, numpy.ascontiguousarray(t), float(s), dx)
        return dx
    dx = e * (s / sum_e)[:, None]
    # one flat index rows·C + t instead of a pair (1.1 µs against 1.75 at 32×10); signed t, as int64 + uint64
    # would give floats
    n, c = e.shape
    if numpy.ndim(s) == 0 and dx.flags.c_contiguous and t.dtype.kind == "i":
        dx.reshape(-1)[arange(n, c) + t] -= s
    else:
        dx[arange(n), t] -= s
    return dx


def relu_forward(x: numpy.ndarray) -> numpy.ndarray:
    """``max(x, 0)`` as NumPy's maximum against zeros gives it: a NaN stays NaN, −0 becomes +0."""
    if native is not None and type(x) is numpy.ndarray and x.dtype in _NATIVE_FLOATS:
        flat = _in_memory_order(x)
        if flat is not None:
            y = numpy.empty_like(x)  # laid out as x (a convolution hands out batch-last views)
            native.relu_forward(flat, _in_memory_order(y))
            return y
    # against an array of zeros, not the scalar 0: NumPy's maximum has a vector loop only for two arrays (2x
    # faster). For a row-major x the zeros are kept from step to step (no allocation and fill: 32×128 in
    # 0.6 µs against 1.8, 128×512 in 3.7 against 9.7); zeros_like keeps any other layout, as mixed layouts run
    # slowly. Arrays over 2²⁰ elements are not kept (memory).
    if type(x) is numpy.ndarray and x.flags.c_contiguous and x.size <= 1 << 20:
        zeros = _ZEROS.get((x.shape, x.dtype))
        if zeros is None:
            zeros = _keep(_ZEROS, (x.shape, x.dtype), numpy.zeros_like(x))
        return numpy.maximum(x, zeros)
    return numpy.maximum(x, numpy.zeros_like(x))


def relu_backward(g: numpy.ndarray, y: numpy.ndarray) -> numpy.ndarray:
    """``g · [y > 0]``, the ReLU's backward from its output (a product: a NaN in g stays NaN)."""
    if (native is not None and type(g) is numpy.ndarray and type(y) is numpy.ndarray and g.dtype in _NATIVE_FLOATS
            and y.dtype == g.dtype and g.shape == y.shape and g.strides == y.strides):
        flat_g, flat_y = _in_memory_order(g), _in_memory_order(y)
        if flat_g is not None and flat_y is not None:
            dx = numpy.empty_like(g)
            native.relu_backward(flat_g, flat_y, _in_memory_order(dx))
            return dx
    # the mask in g's dtype, then multiplied in place: a float×float loop instead of float×bool, which casts
    # the bool through a buffer (32×128: 1.9 µs against 2.1; 128×512: 12.3 against 13.6)
    dx = (y > 0).astype(g.dtype)
    dx *= g
    return dx


def _in_memory_order(a: numpy.ndarray) -> numpy.ndarray | None:
    """``a`` itself if C-contiguous, else its elements as a 1-D view in memory order if they fill one block
    without gaps (a transposed or batch-last array); None otherwise. Two arrays of the same shape and strides
    give views whose elements correspond."""
    if a.flags.c_contiguous:
        return a
    size = a.itemsize
    for stride, n in sorted(zip(a.strides, a.shape)):
        if n != 1 and stride != size:
            return None
        size *= n
    return a.ravel(order="K")


_ZEROS: dict[tuple, numpy.ndarray] = {}
_ONES: dict[tuple[int, Any], numpy.ndarray] = {}
_ARANGE: dict[tuple[int, int], numpy.ndarray] = {}
_UNSIGNED = {n: numpy.dtype(f"u{n}") for n in (1, 2, 4, 8)}  # built once: parsing "u8" costs 0.2 µs a call


def _keep(cache: dict, key: Any, array: numpy.ndarray) -> numpy.ndarray:
    """Store ``array`` read-only in ``cache`` under ``key`` (at most 64 kept, then the cache starts over)."""
    if len(cache) > 64:
        cache.clear()
    array.flags.writeable = False
    cache[key] = array
    return array


def ones(n: int, dtype: Any) -> numpy.ndarray:
    """A kept read-only vector of n ones (row sums as BLAS products, the same every step)."""
    v = _ONES.get((n, dtype))
    return v if v is not None else _keep(_ONES, (n, dtype), numpy.ones(n, dtype))


def arange(n: int, step: int = 1) -> numpy.ndarray:
    """A kept read-only ``arange(n) · step``: the row index (or each row's flat offset) of a pick per row."""
    v = _ARANGE.get((n, step))
    return v if v is not None else _keep(_ARANGE, (n, step), numpy.arange(n) * step)


def zeros(shape: tuple[int, ...], dtype: Any) -> numpy.ndarray:
    return numpy.zeros(shape, dtype=dtype)


def sliding_windows(x: numpy.ndarray, window: tuple[int, ...], axes: tuple[int, ...]) -> numpy.ndarray:
    """A read-only strided view of every window of ``x`` along ``axes`` (im2col without copying): shape
    ``x.shape`` with each axis shortened by its window − 1, followed by the window sizes, as NumPy's
    ``sliding_window_view`` gives (built directly: its argument checks cost more than the view)."""
    shape = list(x.shape)
    for w, axis in zip(window, axes):
        if not 0 < w <= shape[axis]:
            raise ValueError(f"window {tuple(window)} does not fit axes {tuple(axes)} of shape {x.shape}")
        shape[axis] -= w - 1
    strides = x.strides + tuple(x.strides[axis] for axis in axes)
    return numpy.lib.stride_tricks.as_strided(x, tuple(shape) + tuple(window), strides, writeable=False)


def scatter_add(target: numpy.ndarray, index: Any, values: numpy.ndarray) -> None:
    """``target[index] += values`` with repeated indices summed (unbuffered): ``numpy.add.at``, faster.

    ``numpy.add.at`` is slow for a tuple of index arrays or an array beside slices (ms for a 512×1000
    gather backward) but fast for one index into a 1-D array. So where ``target`` has several dimensions
    and is C-contiguous, an index holding integer arrays (with ints, slices, None and ``...`` beside them)
    becomes the flat position of each element of ``target[index]``, and ``numpy.add.at`` runs on the flat
    view: the same elements summed, element by element, in the target's dtype. Other and invalid indices, and small
    ones (under ``_FLAT_MIN`` values, where working out the positions costs more than it saves), go to
    ``numpy.add.at`` as given, which also reports the errors.
    """
    flat = None
    if isinstance(values, numpy.ndarray) and values.size >= _FLAT_MIN and target.ndim > 1 \
            and target.flags.c_contiguous:
        flat = _flat_positions(target.shape, index)
        if flat is not None:
            try:
                values = numpy.broadcast_to(values, flat.shape)
            except ValueError:
                flat = None
    if flat is None:
        numpy.add.at(target, index, values)
    else:
        numpy.add.at(target.reshape(-1), flat.reshape(-1), values.reshape(-1))


_FLAT_MIN = 1536  # values: below about this many, numpy.add.at with the index as given is quicker (NumPy 2.4)


def _flat_positions(shape: tuple[int, ...], index: Any) -> numpy.ndarray | None:
    """The C-order flat position in an array of ``shape`` of each element of ``array[index]``, an intp array
    of that result's shape, following NumPy's rules for integer-array indexing; None where ``index`` has no
    integer array, has a form not handled here (boolean arrays, lists), or is invalid."""
    items = index if isinstance(index, tuple) else (index,)
    advanced = []  # positions in items of the integer arrays and, beside them, the ints
    used = ellipses = 0
    for k, it in enumerate(items):
        if isinstance(it, numpy.ndarray):
            if it.dtype.kind not in "iu":
                return None
            advanced.append(k)
        elif isinstance(it, (int, numpy.integer)) and not isinstance(it, bool):
            advanced.append(k)
        elif it is Ellipsis:
            ellipses += 1
            continue
        elif not isinstance(it, slice) and it is not None:
            return None
        used += it is not None
    if ellipses > 1 or used > len(shape) or not any(isinstance(items[k], numpy.ndarray) for k in advanced):
        return None
    stride = [1] * len(shape)  # element strides of a C-contiguous array
    for d in range(len(shape) - 2, -1, -1):
        stride[d] = stride[d + 1] * shape[d + 1]
    terms = []  # index_d · stride_d for the advanced items; their sum (broadcast) is their offset
    axes = []  # the offsets along each result axis that a slice, None, ... or an unindexed dim makes
    block = None  # where the advanced items' broadcast dims go among the result axes
    d = 0
    for it in items:
        if it is None:
            axes.append(numpy.zeros(1, numpy.intp))
        elif it is Ellipsis or isinstance(it, slice):
            for _ in range(len(shape) - used if it is Ellipsis else 1):
                r = range(shape[d])[it] if isinstance(it, slice) else range(shape[d])
                axes.append(numpy.arange(r.start, r.stop, r.step, dtype=numpy.intp) * stride[d])
                d += 1
        else:
            a, n = numpy.asarray(it), shape[d]
            if a.size:
                low, high = a.min(), a.max()
                if low < -n or high >= n:
                    return None
                if low < 0:
                    a = numpy.where(a < 0, a + n, a)
            if block is None:
                block = len(axes)
            a = a.astype(numpy.intp, copy=False)
            terms.append(a if stride[d] == 1 else a * stride[d])
            d += 1
    axes += [numpy.arange(shape[k], dtype=numpy.intp) * stride[k] for k in range(d, len(shape))]
    if advanced != list(range(advanced[0], advanced[-1] + 1)):
        block = 0  # advanced items apart from each other: NumPy puts their dims first
    offset = terms[0]
    try:
        for term in terms[1:]:
            offset = offset + term
    except ValueError:  # index arrays that do not broadcast together
        return None
    flat = offset.reshape((1,) * block + offset.shape + (1,) * (len(axes) - block))
    for j, v in enumerate(axes):
        at = j if j < block else j + offset.ndim
        flat = flat + v.reshape([-1 if k == at else 1 for k in range(flat.ndim)])
    return flat
