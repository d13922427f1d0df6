"""Convolution ops (1-D, 2-D, 3-D), each one graph node, with PyTorch's arguments and weight layout.

Forward is im2col and one BLAS product per group over the whole batch:
    cols[c·k, p] = x_pad[n, c, o·stride + k·dilation]  with p = (o, n),   Y (O × P) = W (O × C·K) @ cols (+ b).
Backward is the notes' rule for a module with weights, written as two more ops:
    dx = conv_input(x.shape, W, g)   (the transposed convolution: Wᵀ @ g, folded back onto the input)
    dW = conv_weight(x, W.shape, g)  (g @ colsᵀ),   db = Σ g over batch and space.
Those two ops have backward rules made of the same three ops, so gradients of gradients work. Their names
follow ``torch.nn.grad.conv2d_input`` / ``conv2d_weight``.

Layout: the kernels compute "batch-last", (C, *spatial, N) in memory, and hand out (N, C, *spatial) views of
it (a transpose, no copy). With the batch innermost, every row of a window is one long contiguous run, so the
im2col copy and its adjoint (the fold) stream through memory instead of hopping in short runs, and a conv
output fed to ReLU, pooling and the next conv stays in that layout with no copy at all. Inputs in any other
layout (a user's contiguous NCHW batch) are copied batch-last once.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from typing import Any

from deltagrad.autograd.function import Function, defop
from deltagrad.backend import sliding_windows, xp
from deltagrad.ops._util import randn

__all__ = ["conv1d", "conv2d", "conv3d", "conv1d_input", "conv2d_input", "conv3d_input", "conv1d_weight",
           "conv2d_weight", "conv3d_weight"]

# im2col columns up to this size are kept from forward for dW; larger ones are rebuilt in backward
_KEEP_COLS_BYTES = 32 * 2**20


# ---- geometry shared with pooling ----------------------------------------------------------------------------


def ntuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints as an ``n``-tuple, or a ValueError naming the argument."""
    try:
        return (operator.index(value),) * n
    except TypeError:
        pass
    try:
        out = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(out) == 1 and n > 1:
        out = out * n
    if len(out) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


def padding_pairs(padding: Any, n: int, kernel: tuple[int, ...], dilation: tuple[int, ...],
                  stride: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Padding as (before, after) per spatial dim: from an int, n ints, n pairs, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' is not supported for strided convolutions (stride={stride})")
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)  # the extra one goes after, as in PyTorch
        raise ValueError(f"padding must be 'valid', 'same', an int or a tuple of ints, got {padding!r}")
    if isinstance(padding, (tuple, list)) and padding and all(isinstance(p, (tuple, list)) for p in padding):
        pairs = tuple((int(a), int(b)) for a, b in padding)
        if len(pairs) != n:
            raise ValueError(f"padding needs {n} (before, after) pairs, got {padding!r}")
    else:
        pairs = tuple((p, p) for p in ntuple(padding, n, "padding"))
    if any(a < 0 or b < 0 for a, b in pairs):
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return pairs


def out_size(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
             pads: tuple[tuple[int, int], ...], dilation: tuple[int, ...], what: str) -> tuple[int, ...]:
    out = tuple((i + a + b - d * (k - 1) - 1) // s + 1
                for i, k, s, (a, b), d in zip(size, kernel, stride, pads, dilation))
    if any(o < 1 for o in out):
        raise RuntimeError(f"{what}: the (padded) input of spatial size {size} is smaller than the kernel "
                           f"{kernel} with dilation {dilation} and padding {pads}")
    return out


@functools.lru_cache(maxsize=256)
def spans(kernel: tuple, out: tuple, stride: tuple, before: tuple, dilation: tuple, size: tuple) -> tuple:
    """For each kernel offset: (its flat number, the offset, output slices, input slices), pairing every output
    position whose window element at that offset lies inside the unpadded input with that input element:
        x[..., o·stride + offset·dilation − before]  for o in the output slice.
    Offsets whose elements all fall into the padding are left out. Slices start with ``...``, so any leading
    (batch, channel) dimensions work. Cached: a network asks for the same few geometries every step.
    """
    result = []
    for number, offs in enumerate(itertools.product(*map(range, kernel))):
        osl, isl = [Ellipsis], [Ellipsis]
        for k, o, s, a, d, i in zip(offs, out, stride, before, dilation, size):
            first = -((k * d - a) // s) if k * d < a else 0           # first output landing inside x
            last = min(o - 1, (i - 1 + a - k * d) // s)                # last output landing inside x
            if last < first:
                break
            start = first * s + k * d - a
            osl.append(slice(first, last + 1))
            isl.append(slice(start, start + (last - first) * s + 1, s))
        else:
            result.append((number, offs, tuple(osl), tuple(isl)))
    return tuple(result)


def fold(cols, size, stride, pads, dilation):
    """The adjoint of the window copy in ``_columns``: add cols (C, *kernel, *out, N) back onto x (C, *size, N).

    One spatial dimension at a time, outermost first: stage i adds each of its K_i kernel offsets into a slice
    along dimension i only (Σ K_i strided adds instead of Π K_i), and what one add moves is a few long contiguous
    runs (everything inner to dimension i) rather than one short output row each — about twice as fast for
    LeNet. Slices are clipped to the unpadded input, so padding costs nothing. Shapes per stage i:
        (C, K_i … K_last, S_0 … S_i-1, O_i … O_last, N)  ->  (C, K_i+1 … K_last, S_0 … S_i, O_i+1 … O_last, N)
    """
    nd = len(size)
    a = cols
    for i in range(nd):
        k, o = a.shape[1], a.shape[1 + nd]
        b = xp.zeros(a.shape[:1] + a.shape[2:1 + nd] + (size[i],) + a.shape[2 + nd:], a.dtype)
        lead = (slice(None),) * nd
        for _, (ki,), osl, isl in spans((k,), (o,), (stride[i],), (pads[i][0],), (dilation[i],), (size[i],)):
            b[lead + isl[1:]] += a[(slice(None), ki) + lead[1:] + osl[1:]]
        a = b
    return a


# ---- the three kernels ---------------------------------------------------------------------------------------


class _Geometry:
    """Normalized arguments of one convolution (spatial rank, kernel, stride, padding, dilation, groups) and the
    index tuples and axis orders its kernels use. Cached: a network asks for the same few every step."""

    __slots__ = ("nd", "kernel", "stride", "pads", "dilation", "groups", "params", "extent", "thin", "to_cols",
                 "first", "last")

    def __init__(self, nd, kernel, stride, padding, dilation, groups):
        self.nd, self.kernel = nd, tuple(kernel)
        self.stride = ntuple(stride, nd, "stride")
        self.dilation = ntuple(dilation, nd, "dilation")
        self.pads = padding_pairs(padding, nd, self.kernel, self.dilation, self.stride)
        self.groups = int(groups)
        if any(s < 1 for s in self.stride) or any(d < 1 for d in self.dilation) or self.groups < 1:
            raise ValueError(f"stride {self.stride}, dilation {self.dilation} and groups {groups} must be positive")
        self.params = dict(stride=self.stride, padding=self.pads, dilation=self.dilation, groups=self.groups)
        self.extent = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))
        # window view (C, *out without stride, N, *extent) -> every stride-th start, every dilation-th element
        full = slice(None)
        self.thin = None if all(s == 1 for s in self.stride + self.dilation) else (
            (full,) + tuple(slice(None, None, s) for s in self.stride) + (full,)
            + tuple(slice(None, None, d) for d in self.dilation))
        self.to_cols = (0,) + tuple(range(nd + 2, 2 * nd + 2)) + tuple(range(1, nd + 2))   # (C, *kernel, *out, N)
        self.last = tuple(range(1, nd + 2)) + (0,)          # (N, C, *sp) -> (C, *sp, N)
        self.first = (nd + 1,) + tuple(range(nd + 1))      # (C, *sp, N) -> (N, C, *sp)


_geometry_cached = functools.lru_cache(maxsize=256)(_Geometry)


def _geometry(nd, kernel, stride, padding, dilation, groups) -> _Geometry:
    try:
        return _geometry_cached(nd, kernel, stride, padding, dilation, groups)
    except TypeError:  # an unhashable argument (a list): build it uncached (or raise the argument's own error)
        return _Geometry(nd, kernel, stride, padding, dilation, groups)


def _columns(x, geo: _Geometry, ones: bool = False):
    """im2col: (G, C/G·K, P) with the positions p = (*out, N) batch innermost, one copy from a window view.

    ``ones`` appends a row of ones to each group's columns: the bias then rides in the product."""
    n, c = x.shape[:2]
    xt = x.transpose(geo.last)
    if any(a or b for a, b in geo.pads):
        padded = xp.zeros((c,) + tuple(i + a + b for i, (a, b) in zip(x.shape[2:], geo.pads)) + (n,), x.dtype)
        padded[(slice(None),) + tuple(slice(a, a + i) for i, (a, _) in zip(x.shape[2:], geo.pads))] = xt
        xt = padded
    elif not xt.flags.c_contiguous:
        # one transposing copy of the input is much cheaper than a window copy that hops by C·H·W per number
        xt = xp.ascontiguousarray(xt)
    w = sliding_windows(xt, geo.extent, tuple(range(1, 1 + geo.nd)))          # (C, *out without stride, N, *extent)
    if geo.thin is not None:
        w = w[geo.thin]
    w = w.transpose(geo.to_cols)                                              # (C, *kernel, *out, N): a view
    rows = c // geo.groups * math.prod(geo.kernel)
    if not ones:
        return w.reshape(geo.groups, rows, -1)                                # the copy
    cols = xp.empty((geo.groups, rows + 1, math.prod(w.shape[1 + geo.nd:])), x.dtype)
    cols[:, rows] = 1
    # splitting the axes of a slice is always a view, so this assignment is the one copy
    cols[:, :rows].reshape((geo.groups, c // geo.groups) + w.shape[1:])[...] = w.reshape(
        (geo.groups, c // geo.groups) + w.shape[1:])
    return cols


def _grad_rows(g, geo: _Geometry):
    """The output gradient (N, O, *out) as (G, O/G, P), positions ordered as in ``_columns`` (a copy only when
    g is not batch-last already)."""
    return g.transpose(geo.last).reshape(geo.groups, g.shape[1] // geo.groups, -1)


def _tiled(a):
    """a (1, R, X) with zero rows appended up to a multiple of 8 when R % 8 is 5, 6 or 7.

    For a product a @ b with few rows, OpenBLAS (Haswell kernels, two threads) is much faster when the rows
    split into whole register tiles of 4 per thread: measured on the benchmark machine, 6 → 8 rows makes
    LeNet's first conv 1.3× (forward) and 1.8× (weight gradient) faster despite the wasted rows."""
    r = a.shape[1]
    if a.shape[0] != 1 or r % 8 < 5:
        return a
    out = xp.empty((1, r + 8 - r % 8, a.shape[2]), a.dtype)
    out[:, :r] = a
    out[:, r:] = 0
    return out


def _weight_grad(cols, g, geo: _Geometry):
    """dW[g, o, c·k] = Σ_p gy[g, o, p] cols[g, c·k, p]: one product per group over the whole batch, (G, O/G, C/G·K)
    (one more column, db, when cols carry the row of ones)."""
    if cols.shape[1] >= 64:  # measured: OpenBLAS is up to 1.4× faster with the taller operand first
        return xp.matmul(cols, _grad_rows(g, geo).swapaxes(-1, -2)).swapaxes(-1, -2)
    return xp.matmul(_tiled(_grad_rows(g, geo)), cols.swapaxes(-1, -2))[:, :g.shape[1] // geo.groups]


def _check(name, x, weight, bias, geo: _Geometry):
    nd = geo.nd
    if weight.ndim != nd + 2:
        raise RuntimeError(f"{name}: weight must have {nd + 2} dimensions (out_channels, in_channels/groups, "
                           f"*kernel), got shape {weight.shape}")
    if x.ndim != nd + 2 or x.shape[1] != weight.shape[1] * geo.groups or weight.shape[0] % geo.groups:
        raise RuntimeError(f"{name}: input of shape {x.shape} does not match weight of shape {weight.shape} with "
                           f"groups={geo.groups} (expected input (N, {weight.shape[1] * geo.groups}, *spatial) "
                           f"and out_channels divisible by groups)")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise RuntimeError(f"{name}: bias of shape {bias.shape} does not match weight of shape "
                           f"{weight.shape} (expected ({weight.shape[0]},))")


def _batched(a, nd):
    return (a[None], True) if a.ndim == nd + 1 else (a, False)


class _Conv(Function):
    inputs = ("input", "weight", "bias")
    reads = ((1,), (0,), ())

    nd = 2

    def forward(ctx, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        nd = ctx.nd
        name = f"conv{nd}d"
        x, unbatched = _batched(input, nd)
        geo = ctx.geo = _geometry(nd, weight.shape[2:], stride, padding, dilation, groups)
        _check(name, x, weight, bias, geo)
        out = out_size(x.shape[2:], geo.kernel, geo.stride, geo.pads, geo.dilation, name)
        o, gr = weight.shape[0], geo.groups
        w = weight.reshape(gr, o // gr, -1)
        if bias is not None:  # as one more column of W against a row of ones: no pass over y to add it
            w = xp.concatenate([w, bias.reshape(gr, o // gr, 1).astype(w.dtype, copy=False)], axis=-1)
        cols = _columns(x, geo, ones=bias is not None)
        ctx.cols = cols if cols.nbytes <= _KEEP_COLS_BYTES else None
        y = xp.matmul(_tiled(w), cols)[:, :o // gr].reshape((o,) + out + (x.shape[0],))   # (O, *out, N)
        y = y.transpose(geo.first)                                                 # (N, O, *out), batch-last
        return y[0] if unbatched else y

    def backward(ctx, g):
        x, weight = ctx.args[:2]
        need = ctx.needs_input_grad
        need_db = len(need) > 2 and need[2]
        geo = ctx.geo
        dx = _INPUT[ctx.nd](x.shape, weight, g, **geo.params) if need[0] else None
        dw = db = None
        if ctx.cols is not None and not ctx.create_graph and (need[1] or need_db):
            # forward's im2col again; with a bias its row of ones makes the product's last column db
            dwb = _weight_grad(ctx.cols, _batched(g, ctx.nd)[0], geo)
            k = weight[0].size                                                    # C/G·K
            dw = dwb[..., :k].reshape(weight.shape) if need[1] else None
            db = dwb[..., k].reshape(-1) if need_db else None
            return dx, dw, db
        if need[1]:
            dw = _WEIGHT[ctx.nd](x, weight.shape, g, **geo.params)
        if need_db:
            db = g.sum(tuple(i for i in range(g.ndim) if i != g.ndim - ctx.nd - 1))
        return dx, dw, db


class _ConvInput(Function):
    """dx = the transposed convolution of g with W onto an input of shape ``input_size``."""

    inputs = ("input_size", "weight", "grad_output")
    reads = ((), (2,), (1,))

    nd = 2

    def forward(ctx, input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
        nd = ctx.nd
        g, unbatched = _batched(grad_output, nd)
        size = tuple(input_size)
        size = (1,) + size if len(size) == nd + 1 else size
        geo = ctx.geo = _geometry(nd, weight.shape[2:], stride, padding, dilation, groups)
        n, o = g.shape[:2]
        wt = weight.reshape(geo.groups, o // geo.groups, -1).swapaxes(-1, -2)      # (G, C/G·K, O/G)
        dcols = xp.matmul(wt, _grad_rows(g, geo))                                  # (G, C/G·K, P)
        dcols = dcols.reshape((weight.shape[1] * geo.groups,) + geo.kernel + g.shape[2:] + (n,))
        dx = fold(dcols, size[2:], geo.stride, geo.pads, geo.dilation).transpose(geo.first)
        return dx[0] if unbatched else dx

    def backward(ctx, h):
        _, weight, g = ctx.args
        need = ctx.needs_input_grad
        p = ctx.geo.params
        dw = _WEIGHT[ctx.nd](h, weight.shape, g, **p) if need[1] else None
        dg = _CONV[ctx.nd](h, weight, None, **p) if need[2] else None
        return None, dw, dg


class _ConvWeight(Function):
    """dW = Σ over batch and positions of g times the input windows, for a weight of shape ``weight_size``."""

    inputs = ("input", "weight_size", "grad_output")
    reads = ((2,), (), (0,))

    nd = 2

    def forward(ctx, input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
        nd = ctx.nd
        x, _ = _batched(input, nd)
        g, _ = _batched(grad_output, nd)
        geo = ctx.geo = _geometry(nd, tuple(weight_size)[2:], stride, padding, dilation, groups)
        return _weight_grad(_columns(x, geo), g, geo).reshape(tuple(weight_size))

    def backward(ctx, h):
        x, _, g = ctx.args
        need = ctx.needs_input_grad
        p = ctx.geo.params
        dx = _INPUT[ctx.nd](x.shape, h, g, **p) if need[0] else None
        dg = _CONV[ctx.nd](x, h, None, **p) if need[2] else None
        return dx, None, dg


# ---- registration: one class per spatial rank, with examples small enough for gradgradcheck -----------------------


def _conv_examples(nd):
    def examples(r):
        sp = (5, 4, 3)[:nd]
        k = (3, 2, 2)[:nd]
        return [
            ((randn(r, 2, 3, *sp), randn(r, 2, 3, *k), randn(r, 2)), {}),
            ((randn(r, 1, 2, *sp), randn(r, 3, 2, *k), randn(r, 3)),
             dict(stride=(2, 1, 2)[:nd], padding=(1, 2, 1)[:nd], dilation=(1, 2, 1)[:nd])),
            ((randn(r, 2, 4, *sp), randn(r, 2, 2, *k)), dict(groups=2, padding=1)),
            ((randn(r, 2, *sp), randn(r, 2, 2, *k)), dict(padding="same")),                 # unbatched
        ]
    return staticmethod(examples)


def _input_examples(nd):
    def examples(r):
        sp, k = (5, 4, 3)[:nd], (3, 2, 2)[:nd]
        out = tuple(s - q + 1 for s, q in zip(sp, k))
        out2 = tuple((s + 2 - q) // 2 + 1 for s, q in zip(sp, k))
        return [
            (((2, 3) + sp, randn(r, 2, 3, *k), randn(r, 2, 2, *out)), {}),
            (((1, 2) + sp, randn(r, 4, 1, *k), randn(r, 1, 4, *out2)), dict(stride=2, padding=1, groups=2)),
        ]
    return staticmethod(examples)


def _weight_examples(nd):
    def examples(r):
        sp, k = (5, 4, 3)[:nd], (3, 2, 2)[:nd]
        out = tuple(s - q + 1 for s, q in zip(sp, k))
        out2 = tuple((s + 2 - 2 * (q - 1) - 1) // 2 + 1 for s, q in zip(sp, k))
        return [
            ((randn(r, 2, 3, *sp), (2, 3) + k, randn(r, 2, 2, *out)), {}),
            ((randn(r, 1, 2, *sp), (4, 1) + k, randn(r, 1, 4, *out2)),
             dict(stride=2, padding=1, dilation=2, groups=2)),
        ]
    return staticmethod(examples)


_CONV, _INPUT, _WEIGHT = {}, {}, {}
for _nd in (1, 2, 3):
    _c = type(f"Conv{_nd}d", (_Conv,), dict(nd=_nd, examples=_conv_examples(_nd), __doc__=(
        f"{_nd}-D convolution (cross-correlation, as PyTorch): y[n, o] = b[o] + Σ_c W[o, c] ⋆ x[n, c].\n\n"
        f"input (N, C_in, *{_nd} spatial) or unbatched (C_in, *spatial); weight (C_out, C_in/groups, *kernel);\n"
        "bias (C_out,) or None; stride, padding (int, tuple, 'valid' or 'same'), dilation, groups as torch.")))
    _i = type(f"Conv{_nd}dInput", (_ConvInput,), dict(nd=_nd, examples=_input_examples(_nd),
                                                      __doc__=_ConvInput.__doc__))
    _w = type(f"Conv{_nd}dWeight", (_ConvWeight,), dict(nd=_nd, examples=_weight_examples(_nd),
                                                        __doc__=_ConvWeight.__doc__))
    _CONV[_nd] = defop(_c, f"conv{_nd}d")
    _INPUT[_nd] = defop(_i, f"conv{_nd}d_input")
    _WEIGHT[_nd] = defop(_w, f"conv{_nd}d_weight")

conv1d, conv2d, conv3d = _CONV[1], _CONV[2], _CONV[3]
conv1d_input, conv2d_input, conv3d_input = _INPUT[1], _INPUT[2], _INPUT[3]
conv1d_weight, conv2d_weight, conv3d_weight = _WEIGHT[1], _WEIGHT[2], _WEIGHT[3]
