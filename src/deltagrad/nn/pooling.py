"""Pooling layers: ``MaxPool1d/2d/3d`` and ``AvgPool1d/2d/3d`` (no parameters)."""

from __future__ import annotations

from typing import Any

from deltagrad.nn import functional as F
from deltagrad.nn.module import Module
from deltagrad.tensor import Tensor


class _MaxPoolNd(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """y[n, c, t] = max over the window x_pad[n, c, t·stride + k·dilation], k < kernel_size.

    Shapes: (N, C, L) or (C, L) → (N, C, L_out), L_out = ⌊(L + 2·padding − dilation·(kernel_size − 1) − 1)
    / stride⌋ + 1 (⌈⌉ with ``ceil_mode``); ``stride`` defaults to ``kernel_size``. Backprop to input routes
    each δ to the position that won its window (the others get 0). ``return_indices=True`` also returns
    the flat positions of the maxima.

    >>> MaxPool1d(2)(deltagrad.randn(1, 3, 8)).shape
    (1, 3, 4)
    """

    def forward(self, input: Tensor) -> Any:
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class MaxPool2d(_MaxPoolNd):
    """y[n, c, i, j] = max of x_pad over the (kh × kw) window at (i·s_h, j·s_w) (with dilation).

    Shapes: (N, C, H, W) or (C, H, W) → (N, C, H_out, W_out), H_out = ⌊(H + 2·pad_h − d_h·(kh − 1) − 1) / s_h⌋
    + 1 (likewise W_out, ⌈⌉ with ``ceil_mode``); ``stride`` defaults to ``kernel_size``. Backprop to input
    sends each δ to its window's maximum.

    >>> MaxPool2d(2)(deltagrad.randn(2, 6, 24, 24)).shape      # LeNet's pooling
    (2, 6, 12, 12)
    """

    def forward(self, input: Tensor) -> Any:
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class MaxPool3d(_MaxPoolNd):
    """y[n, c, d, i, j] = max of x_pad over the (kd × kh × kw) window at (d·s_d, i·s_h, j·s_w) (with dilation).

    Shapes: (N, C, D, H, W) or (C, D, H, W) → (N, C, D_out, H_out, W_out), each size as in ``MaxPool2d``;
    ``stride`` defaults to ``kernel_size``. Backprop to input sends each δ to its window's maximum.

    >>> MaxPool3d(2)(deltagrad.randn(1, 2, 4, 6, 6)).shape
    (1, 2, 2, 3, 3)
    """

    def forward(self, input: Tensor) -> Any:
        return F.max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool1d(Module):
    """y[n, c, t] = (1/K) Σ_k x_pad[n, c, t·stride + k]: the mean of each window.

    Shapes: (N, C, L) or (C, L) → (N, C, L_out), L_out = ⌊(L + 2·padding − kernel_size) / stride⌋ + 1;
    ``stride`` defaults to ``kernel_size``. ``count_include_pad`` counts padded zeros in K. Backprop to input
    spreads δ/K evenly over each window.

    >>> AvgPool1d(3, stride=2)(deltagrad.randn(1, 2, 9)).shape
    (1, 2, 4)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPool(Module):
    """What AvgPool2d and AvgPool3d share: their arguments (PyTorch's), which ``_pool`` passes on."""

    _pool: Any = None

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._pool(input, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                                count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPool):
    """y[n, c, i, j] = (1/K) Σ over the (kh × kw) window of x_pad at (i·s_h, j·s_w): the window mean.

    Shapes: (N, C, H, W) or (C, H, W) → (N, C, H_out, W_out), H_out = ⌊(H + 2·pad_h − kh) / s_h⌋ + 1;
    ``stride`` defaults to ``kernel_size``; K = kh·kw, or ``divisor_override``. Backprop to input spreads
    δ/K over each window.

    >>> AvgPool2d(2)(deltagrad.randn(2, 3, 8, 8)).shape
    (2, 3, 4, 4)
    """

    _pool = F.avg_pool2d


class AvgPool3d(_AvgPool):
    """y[n, c, d, i, j] = (1/K) Σ over the (kd × kh × kw) window of x_pad at (d·s_d, i·s_h, j·s_w).

    Shapes: (N, C, D, H, W) or (C, D, H, W) → (N, C, D_out, H_out, W_out), each size as in ``AvgPool2d``;
    K = kd·kh·kw, or ``divisor_override``; ``count_include_pad`` and ``ceil_mode`` as in ``AvgPool2d``.

    >>> AvgPool3d(2)(deltagrad.randn(1, 2, 4, 6, 6)).shape
    (1, 2, 2, 3, 3)
    """

    _pool = F.avg_pool3d


def _single(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)
