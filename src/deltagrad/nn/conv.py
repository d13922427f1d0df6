"""Convolution layers: ``Conv1d``, ``Conv2d``, ``Conv3d`` (PyTorch's cross-correlation, weight (out, in, *kernel))."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deltagrad import creation
from deltagrad.nn import functional as F
from deltagrad.nn import init
from deltagrad.nn.module import Module, check_device
from deltagrad.nn.parameter import Parameter
from deltagrad.tensor import Tensor


def _ntuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    """An int or a length-n sequence of ints as an n-tuple (PyTorch's ``_pair``), or a clear error."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
        out = tuple(value)
    else:
        out = (value,) * n
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


class _ConvNd(Module):
    _dims = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        n, name = self._dims, type(self).__name__
        check_device(device, name)
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {', '.join(map(repr, _PAD_MODES))}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                             f"be divisible by groups ({groups})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        self.stride = _ntuple(stride, n, "stride")
        self.dilation = _ntuple(dilation, n, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
            self.padding: Any = padding
        else:
            self.padding = _ntuple(padding, n, "padding")
        for arg in ("kernel_size", "stride", "dilation"):
            if any(v <= 0 for v in getattr(self, arg)):
                raise ValueError(f"{name}: {arg} must be positive, got {getattr(self, arg)}")
        if not isinstance(padding, str) and any(p < 0 for p in self.padding):
            raise ValueError(f"{name}: padding must be non-negative, got {self.padding}")
        # (before, after) per spatial dim, for the modes that pad by indexing before the convolution
        if self.padding == "valid":
            self._pad_pairs = ((0, 0),) * n
        elif self.padding == "same":
            total = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
            self._pad_pairs = tuple((t // 2, t - t // 2) for t in total)
        else:
            self._pad_pairs = tuple((p, p) for p in self.padding)
        self.weight = Parameter(creation.empty(out_channels, in_channels // groups, *self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: W via ``kaiming_uniform_(a=√5)`` (bound 1/√fan_in), b ~ U(−1/√fan_in, 1/√fan_in),
        with fan_in = (in_channels / groups) · kernel area."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _conv(self, conv: Any, input: Tensor) -> Tensor:
        if self.padding_mode == "zeros":
            return conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return conv(_pad_by_index(input, self._pad_pairs, self.padding_mode), self.weight, self.bias,
                    self.stride, 0, self.dilation, self.groups)


_PAD_MODES = ("zeros", "reflect", "replicate", "circular")


def _pad_by_index(x: Tensor, pairs: tuple[tuple[int, int], ...], mode: str) -> Tensor:
    """Pad the last len(pairs) dims by gathering: index i of the padded axis reads x at
    reflect: |i| mirrored at both ends (edge not repeated), replicate: the nearest edge, circular: i mod L.
    A gather's gradient scatters back (sums), so backprop to input is exact."""
    nd = len(pairs)
    for axis, (before, after) in enumerate(pairs, start=x.ndim - nd):
        if before == 0 and after == 0:
            continue
        size = x.shape[axis]
        i = np.arange(-before, size + after)
        if mode == "reflect":
            if before >= size or after >= size:
                raise ValueError(f"reflect padding ({before}, {after}) must be smaller than the input size {size} "
                                 f"of dimension {axis}")
            i = np.abs(i)
            i = np.where(i > size - 1, 2 * (size - 1) - i, i)
        elif mode == "replicate":
            i = np.clip(i, 0, size - 1)
        else:
            if before > size or after > size:
                raise ValueError(f"circular padding ({before}, {after}) must be at most the input size {size} "
                                 f"of dimension {axis}")
            i = i % size
        x = x[(slice(None),) * axis + (i,)]
    return x


class Conv1d(_ConvNd):
    """1-D convolution (cross-correlation) over a signal of ``in_channels`` channels.

    y[n, o, t] = b[o] + Σ_c Σ_k W[o, c, k] · x_pad[n, c, t·stride + k·dilation]

    Shapes: input (N, C_in, L) or (C_in, L) → output (N, C_out, L_out) with
    L_out = ⌊(L + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1; ``weight`` (C_out, C_in, K),
    ``bias`` (C_out,). With ``groups=g`` the channels are split into g independent convolutions and the
    weight is (C_out, C_in/g, K). ``padding`` may be 'valid' or 'same'; ``padding_mode`` 'zeros' (default),
    'reflect', 'replicate' or 'circular' says what the padded border holds.

    Backprop to input is a full correlation of δ with the flipped kernel; backprop to weights correlates
    the input (forward signal) with δ (backward signal). Initialization as ``Linear``'s with
    fan_in = (C_in/groups) · K.

    >>> conv = Conv1d(2, 4, kernel_size=3, padding=1)
    >>> conv(deltagrad.randn(8, 2, 16)).shape
    (8, 4, 16)
    """

    _dims = 1

    def forward(self, input: Tensor) -> Tensor:
        return self._conv(F.conv1d, input)


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over an image of ``in_channels`` channels; rectangular kernels
    by a tuple ``kernel_size=(kh, kw)``.

    y[n, o, i, j] = b[o] + Σ_c Σ_{p,q} W[o, c, p, q] · x_pad[n, c, i·s_h + p·d_h, j·s_w + q·d_w]

    Shapes: input (N, C_in, H, W) or (C_in, H, W) → output (N, C_out, H_out, W_out) with
    H_out = ⌊(H + 2·pad_h − d_h·(kh − 1) − 1) / s_h⌋ + 1 (likewise W_out); ``weight`` (C_out, C_in, kh, kw),
    ``bias`` (C_out,); ``groups`` as in ``Conv1d``. Initialization as ``Linear``'s with fan_in = C_in · kh · kw.

    >>> conv = Conv2d(1, 6, kernel_size=5)                     # LeNet's first layer
    >>> conv(deltagrad.randn(2, 1, 28, 28)).shape
    (2, 6, 24, 24)
    """

    _dims = 2

    def forward(self, input: Tensor) -> Tensor:
        return self._conv(F.conv2d, input)


class Conv3d(_ConvNd):
    """3-D convolution (cross-correlation) over a volume (or a clip of frames) of ``in_channels`` channels.

    y[n, o, d, i, j] = b[o] + Σ_c Σ_{r,p,q} W[o, c, r, p, q] · x_pad[n, c, d·s_d + r·d_d, i·s_h + p·d_h,
    j·s_w + q·d_w]

    Shapes: input (N, C_in, D, H, W) or (C_in, D, H, W) → output (N, C_out, D_out, H_out, W_out), each size as
    in ``Conv2d``; ``weight`` (C_out, C_in/groups, kd, kh, kw), ``bias`` (C_out,); ``padding`` and
    ``padding_mode`` as in ``Conv1d``. Initialization as ``Linear``'s with fan_in = C_in/groups · kd · kh · kw.

    >>> conv = Conv3d(1, 4, kernel_size=3, padding=1)
    >>> conv(deltagrad.randn(2, 1, 8, 8, 8)).shape
    (2, 4, 8, 8, 8)
    """

    _dims = 3

    def forward(self, input: Tensor) -> Tensor:
        return self._conv(F.conv3d, input)
