"""Pooling ops (1-D, 2-D, 3-D): max and average, each one graph node, with PyTorch's arguments.

Both walk the kernel offsets (``conv.spans``): for each offset, one strided slice of the input lines up with
every output's window element at that offset, so a pooling layer is a handful of whole-array operations,
never a loop over the batch or channels. Padding is implicit (the slices are clipped to the input):
max-pooling treats it as −∞, average-pooling as zeros.

    max:  y = max over the window,   dx = g sent to the arg-max of each window (overlaps accumulate)
    avg:  y = Σ window / divisor,    dx = g / divisor spread over each window

Outputs and gradients are laid out in memory like the input (``empty_like_layout``): a convolution hands out
batch-last views (see ``conv``), and operations between arrays of different memory orders are several times
slower than between arrays of the same one.

The max-pool backward is the op ``max_pool_scatter`` and its adjoint ``max_pool_gather`` (g read back at each
window's arg-max); ``avg_pool_backward`` and average pooling are each other's adjoint. So gradients of
gradients work.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from deltagrad.autograd.function import Function, defop
from deltagrad.backend import xp
from deltagrad.ops._util import randn
from deltagrad.ops.conv import ntuple, spans
from deltagrad.tensor import Tensor

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"]


class PoolGeometry:
    """kernel, stride, padding (before; after is implied by the output size), dilation, input and output sizes."""

    __slots__ = ("nd", "kernel", "stride", "pad", "dilation", "size", "out", "ceil_mode")

    def __init__(self, name: str, nd: int, shape: tuple, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, ceil_mode: bool) -> None:
        if len(shape) not in (nd + 1, nd + 2):
            raise RuntimeError(f"{name}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                               f"got shape {tuple(shape)}")
        self.nd = nd
        self.kernel = ntuple(kernel_size, nd, "kernel_size")
        self.stride = self.kernel if stride is None or stride == [] or stride == () else ntuple(stride, nd, "stride")
        self.pad = ntuple(padding, nd, "padding")
        self.dilation = ntuple(dilation, nd, "dilation")
        self.ceil_mode = bool(ceil_mode)
        self.size = tuple(shape[-nd:])
        if min(self.kernel + self.stride + self.dilation) < 1 or min(self.pad) < 0:
            raise ValueError(f"{name}: kernel_size {self.kernel}, stride {self.stride} and dilation {self.dilation} "
                             f"must be positive and padding {self.pad} non-negative")
        if any(p > k // 2 for p, k in zip(self.pad, self.kernel)):
            raise ValueError(f"{name}: padding {self.pad} should be at most half of kernel_size {self.kernel}")
        out = []
        for i, k, s, p, d in zip(self.size, self.kernel, self.stride, self.pad, self.dilation):
            span = i + 2 * p - d * (k - 1) - 1
            o = (span + (s - 1 if ceil_mode else 0)) // s + 1
            if ceil_mode and (o - 1) * s >= i + p:  # the last window must start inside the input or left padding
                o -= 1
            out.append(o)
        if min(out) < 1:
            raise RuntimeError(f"{name}: input of spatial size {self.size} is too small for kernel_size "
                               f"{self.kernel}, dilation {self.dilation} and padding {self.pad} (output {tuple(out)})")
        self.out = tuple(out)

    def spans(self) -> tuple:
        return spans(self.kernel, self.out, self.stride, self.pad, self.dilation, self.size)

    def params(self) -> dict:
        return dict(kernel_size=self.kernel, stride=self.stride, padding=self.pad, dilation=self.dilation,
                    ceil_mode=self.ceil_mode)


def empty_like_layout(a, shape: tuple, dtype, fill=None):
    """An array of ``shape`` (same rank as ``a``) whose axes lie in memory in the order of ``a``'s, filled with
    ``fill`` unless it is None."""
    if a.flags.c_contiguous:
        out = xp.empty(shape, dtype)
    else:
        order = sorted(range(a.ndim), key=lambda i: -abs(a.strides[i]))   # outermost axis first
        out = xp.empty(tuple(shape[i] for i in order), dtype).transpose([order.index(i) for i in range(a.ndim)])
    if fill is not None:
        out.fill(fill)
    return out


def _same_layout(a, ref):
    """``a``, or a copy of it laid out like ``ref`` (same rank) when their memory orders differ."""
    if a.flags.c_contiguous and ref.flags.c_contiguous:
        return a
    strides = [s for s, n in zip(a.strides, a.shape) if n > 1]
    ref_strides = [s for s, n in zip(ref.strides, ref.shape) if n > 1]
    if len(strides) == len(ref_strides) and xp.argsort(strides).tolist() == xp.argsort(ref_strides).tolist():
        return a
    out = empty_like_layout(ref, a.shape, a.dtype)
    out[...] = a
    return out


def _covers(osl: tuple, out: tuple) -> bool:
    """The output slices of a span reach every output position."""
    return all(s.start == 0 and s.stop == o for s, o in zip(osl[1:], out))


_geometry_cached = functools.lru_cache(maxsize=256)(PoolGeometry)


def geometry(name: str, nd: int, shape: tuple, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
             ceil_mode: bool) -> PoolGeometry:
    """``PoolGeometry``, cached: a network asks for the same few every step (its spans are cached too)."""
    try:
        return _geometry_cached(name, nd, tuple(shape), kernel_size, stride, padding, dilation, ceil_mode)
    except TypeError:  # an unhashable argument (a list): build it uncached (or raise the argument's own error)
        return PoolGeometry(name, nd, tuple(shape), kernel_size, stride, padding, dilation, ceil_mode)


def _check_out(name: str, a, lead: tuple, geo: PoolGeometry) -> None:
    if tuple(a.shape) != tuple(lead) + geo.out:
        raise RuntimeError(f"{name}: expected an array of output shape {tuple(lead) + geo.out} for an "
                           f"input of shape {tuple(lead) + geo.size}, got shape {tuple(a.shape)}")


# ---- max pooling -----------------------------------------------------------------------------------------------


def _index_dtype(kernel):
    return xp.int8 if math.prod(kernel) < 128 else xp.int32


def max_pool_forward(x, geo: PoolGeometry):
    """(values, arg): the max of each window and the number of its kernel offset (first maximum wins, as torch)."""
    lead = x.shape[:-geo.nd]
    spans = geo.spans()
    first_covers = _covers(spans[0][2], geo.out)
    y = empty_like_layout(x, lead + geo.out, x.dtype, None if first_covers else -xp.inf)
    arg = empty_like_layout(x, lead + geo.out, _index_dtype(geo.kernel), 0)
    for number, _, osl, isl in spans:
        v, ys = x[isl], y[osl]
        if number == 0 and first_covers:
            ys[...] = v
            continue
        # offsets come in increasing order, so "set arg to number where v wins" is a branch-free maximum
        # (np.where / masked copies branch on every element and are ten times slower on random data)
        a = arg[osl]
        xp.maximum(a, xp.multiply(v > ys, number, dtype=arg.dtype), out=a)
        xp.maximum(ys, v, out=ys)
    return y, arg


def _disjoint(geo: PoolGeometry) -> bool:
    """No input element lies in two windows: the scatter can assign instead of add."""
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(geo.kernel, geo.stride, geo.dilation))


def _tiles(geo: PoolGeometry) -> bool:
    """Every input element lies in exactly one window (kernel == stride, no padding, sizes divisible)."""
    return all(p == 0 and d == 1 and s == k and o * s == i
               for k, s, p, d, i, o in zip(geo.kernel, geo.stride, geo.pad, geo.dilation, geo.size, geo.out))


class _MaxPool(Function):
    inputs = ("input",)

    nd = 2

    def forward(ctx, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        geo = geometry(f"max_pool{ctx.nd}d", ctx.nd, input.shape, kernel_size, stride, padding, dilation,
                       ceil_mode)
        y, ctx.arg = max_pool_forward(input, geo)
        ctx.size, ctx.params = input.shape, geo.params()
        return y

    def backward(ctx, g):
        return max_pool_scatter(g, ctx.arg, ctx.size, **ctx.params)


class MaxPoolScatter(Function):
    """dx = g added at each window's arg-max (``arg``: the kernel offset chosen by max pooling), into zeros of
    ``input_size``: the backward of max pooling. Its own backward is ``max_pool_gather``."""

    inputs = ("g", "arg")

    def forward(ctx, g, arg, input_size, kernel_size, stride, padding=0, dilation=1, ceil_mode=False):
        nd = len(kernel_size)
        geo = geometry("max_pool_scatter", nd, tuple(input_size), kernel_size, stride, padding, dilation,
                       ceil_mode)
        _check_out("max_pool_scatter", g, tuple(input_size)[:-nd], geo)
        ctx.params = geo.params()
        dx = empty_like_layout(arg, tuple(input_size), g.dtype, None if _tiles(geo) else 0)  # tiles: all written
        zero = g.dtype.type(0)
        disjoint = _disjoint(geo)
        # g · [arg = offset] is a branch-free product, but it would spread a NaN or ±∞ of g over the whole
        # window (NaN · 0): such a g takes the slower np.where. A finite sum means every element is finite.
        finite = bool(xp.isfinite(g.sum()))
        g = _same_layout(g, arg)   # g from a flatten is (N, C, *out) while arg is like the input (batch-last)
        for number, _, osl, isl in geo.spans():
            hit = arg[osl] == number
            if disjoint and finite:
                xp.multiply(g[osl], hit, out=dx[isl])
            elif disjoint:
                dx[isl] = xp.where(hit, g[osl], zero)
            else:
                dx[isl] += g[osl] * hit if finite else xp.where(hit, g[osl], zero)
        return dx

    def backward(ctx, h):
        return max_pool_gather(h, ctx.args[1], **ctx.params), None, None

    examples = staticmethod(lambda r: [
        ((randn(r, 2, 3, 3), r.integers(0, 4, (2, 3, 3)), (2, 5, 5), (2, 2), (2, 2)), dict(padding=1)),
        ((randn(r, 1, 2, 3, 3), r.integers(0, 6, (1, 2, 3, 3)), (1, 2, 5, 6), (2, 3), (1, 2)),
         dict(dilation=(2, 1), ceil_mode=True)),
        ((randn(r, 2, 3, 5), r.integers(0, 3, (2, 3, 5)), (2, 3, 9), (3,), (2,)), dict(padding=1)),
    ])


class MaxPoolGather(Function):
    """y = h read at each window's arg-max (``arg`` as in ``max_pool_scatter``, whose adjoint this is)."""

    inputs = ("h", "arg")

    def forward(ctx, h, arg, kernel_size, stride, padding=0, dilation=1, ceil_mode=False):
        nd = len(kernel_size)
        geo = geometry("max_pool_gather", nd, h.shape, kernel_size, stride, padding, dilation, ceil_mode)
        _check_out("max_pool_gather", arg, h.shape[:-nd], geo)
        ctx.size, ctx.params = h.shape, geo.params()
        y = empty_like_layout(h, arg.shape, h.dtype, 0)
        zero = h.dtype.type(0)
        for number, _, osl, isl in geo.spans():
            y[osl] += xp.where(arg[osl] == number, h[isl], zero)
        return y

    def backward(ctx, g):
        return max_pool_scatter(g, ctx.args[1], ctx.size, **ctx.params), None

    examples = staticmethod(lambda r: [
        ((randn(r, 2, 5, 5), r.integers(0, 4, (2, 3, 3)), (2, 2), (2, 2)), dict(padding=1)),
        ((randn(r, 1, 2, 5, 6), r.integers(0, 6, (1, 2, 3, 3)), (2, 3), (1, 2)),
         dict(dilation=(2, 1), ceil_mode=True)),
    ])


max_pool_scatter = defop(MaxPoolScatter, "max_pool_scatter")
max_pool_gather = defop(MaxPoolGather, "max_pool_gather")


# ---- average pooling -------------------------------------------------------------------------------------------


def _divisor(geo: PoolGeometry, count_include_pad: bool, divisor_override: Any):
    """What each window's sum is divided by, as torch: a number, or an array over the output positions."""
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("divisor_override must be non-zero")
        return float(divisor_override)
    counts = []
    for i, k, s, p, o in zip(geo.size, geo.kernel, geo.stride, geo.pad, geo.out):
        start = xp.arange(o) * s - p
        end = xp.minimum(start + k, i + p)  # windows stop at the padding, not in the ceil_mode overhang
        counts.append(end - start if count_include_pad else xp.minimum(end, i) - xp.maximum(start, 0))
    if all((c == k).all() for c, k in zip(counts, geo.kernel)):
        return float(math.prod(geo.kernel))
    div = counts[0]
    for c in counts[1:]:
        div = xp.multiply.outer(div, c)
    return div


class _AvgPool(Function):
    inputs = ("input",)

    nd = 2

    def forward(ctx, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
        geo = geometry(f"avg_pool{ctx.nd}d", ctx.nd, input.shape, kernel_size, stride, padding, 1, ceil_mode)
        div = _divisor(geo, count_include_pad, divisor_override)
        y = empty_like_layout(input, input.shape[:-ctx.nd] + geo.out, input.dtype, 0)
        for _, _, osl, isl in geo.spans():
            y[osl] += input[isl]
        y /= xp.asarray(div, input.dtype) if not isinstance(div, float) else div
        ctx.size = input.shape
        ctx.params = dict(kernel_size=geo.kernel, stride=geo.stride, padding=geo.pad, ceil_mode=geo.ceil_mode,
                          count_include_pad=count_include_pad, divisor_override=divisor_override)
        return y

    def backward(ctx, g):
        return avg_pool_backward(g, ctx.size, **ctx.params)


class AvgPoolBackward(Function):
    """dx = g / divisor spread over every window, into zeros of ``input_size``: the adjoint of average pooling
    (whose own backward it is, and which is its backward)."""

    inputs = ("g",)

    def forward(ctx, g, input_size, kernel_size, stride, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
        nd = len(kernel_size)
        geo = geometry("avg_pool_backward", nd, tuple(input_size), kernel_size, stride, padding, 1, ceil_mode)
        _check_out("avg_pool_backward", g, tuple(input_size)[:-nd], geo)
        div = _divisor(geo, count_include_pad, divisor_override)
        gd = g / (xp.asarray(div, g.dtype) if not isinstance(div, float) else div)
        dx = empty_like_layout(g, tuple(input_size), g.dtype, 0)
        for _, _, osl, isl in geo.spans():
            dx[isl] += gd[osl]
        ctx.nd = nd
        ctx.params = dict(kernel_size=geo.kernel, stride=geo.stride, padding=geo.pad, ceil_mode=geo.ceil_mode,
                          count_include_pad=count_include_pad, divisor_override=divisor_override)
        return dx

    def backward(ctx, h):
        return _AVG[ctx.nd](h, **ctx.params), None

    examples = staticmethod(lambda r: [
        ((randn(r, 2, 2, 2), (2, 4, 4), (2, 2), (2, 2)), {}),
        ((randn(r, 1, 2, 3, 3), (1, 2, 5, 4), (3, 2), (2, 2)),
         dict(padding=1, ceil_mode=True, count_include_pad=False)),
        ((randn(r, 2, 3, 4), (2, 3, 8), (3,), (2,)), dict(padding=1)),
    ])


avg_pool_backward = defop(AvgPoolBackward, "avg_pool_backward")


# ---- registration ----------------------------------------------------------------------------------------------


def _max_examples(nd):
    def examples(r):
        sp = (6, 5, 4)[:nd]
        return [
            ((randn(r, 2, 2, *sp), 2), {}),
            ((randn(r, 1, 2, *sp), (3, 2, 2)[:nd]), dict(stride=(2, 1, 1)[:nd], padding=1)),
            ((randn(r, 2, *sp), 2), dict(stride=1, dilation=(2, 1, 1)[:nd], ceil_mode=True)),   # unbatched
            ((randn(r, 1, 2, *sp), 3), dict(stride=2, ceil_mode=True)),
        ]
    return staticmethod(examples)


def _avg_examples(nd):
    def examples(r):
        sp = (6, 5, 4)[:nd]
        cases = [
            ((randn(r, 2, 2, *sp), 2), {}),
            ((randn(r, 1, 2, *sp), (3, 2, 2)[:nd]), dict(stride=(2, 1, 1)[:nd], padding=1)),
            ((randn(r, 2, *sp), 3), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
        ]
        if nd > 1:  # torch's avg_pool1d has no divisor_override
            cases.append(((randn(r, 1, 2, *sp), 2), dict(stride=1, divisor_override=3)))
        return cases
    return staticmethod(examples)


_MAX, _AVG = {}, {}
for _nd in (1, 2, 3):
    _MAX[_nd] = defop(type(f"MaxPool{_nd}d", (_MaxPool,), dict(nd=_nd, examples=_max_examples(_nd), __doc__=(
        f"{_nd}-D max pooling: y = max over each window; dx = g at the window's arg-max (first maximum).\n\n"
        f"input (N, C, *{_nd} spatial) or (C, *spatial); kernel_size, stride (default kernel_size), padding\n"
        "(at most half the kernel, treated as −∞), dilation, ceil_mode as torch."))), f"max_pool{_nd}d")
    _AVG[_nd] = defop(type(f"AvgPool{_nd}d", (_AvgPool,), dict(nd=_nd, examples=_avg_examples(_nd), __doc__=(
        f"{_nd}-D average pooling: y = Σ window / divisor; dx = g / divisor over each window.\n\n"
        f"input (N, C, *{_nd} spatial) or (C, *spatial); kernel_size, stride (default kernel_size), padding\n"
        "(zeros), ceil_mode, count_include_pad, divisor_override as torch."))), f"avg_pool{_nd}d")

max_pool1d, max_pool2d, max_pool3d = _MAX[1], _MAX[2], _MAX[3]


def max_pool_with_indices(nd: int, input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                          dilation: Any = 1, ceil_mode: bool = False) -> tuple:
    """Max pooling that also returns where each maximum came from, as torch's ``return_indices=True``: the
    index into the input's flattened spatial dimensions (h·W + w in 2-D), int64, outside the graph."""
    y = _MAX[nd](input, kernel_size, stride, padding, dilation, ceil_mode)
    data = input.data if isinstance(input, Tensor) else input
    geo = geometry(f"max_pool{nd}d", nd, data.shape, kernel_size, stride, padding, dilation, ceil_mode)
    node = y._node if isinstance(y, Tensor) else None
    arg = node.arg if node is not None else max_pool_forward(data, geo)[1]
    offsets = xp.unravel_index(arg.astype(xp.intp), geo.kernel)
    flat = xp.zeros(arg.shape, xp.int64)
    for axis, (k, s, p, d, i, o) in enumerate(zip(offsets, geo.stride, geo.pad, geo.dilation, geo.size, geo.out)):
        start = (xp.arange(o) * s - p).reshape((o,) + (1,) * (nd - 1 - axis))
        flat = flat * i + xp.clip(start + k * d, 0, i - 1)
    return y, Tensor(flat) if isinstance(y, Tensor) else flat
avg_pool1d, avg_pool2d, avg_pool3d = _AVG[1], _AVG[2], _AVG[3]
