"""Batch normalization: ``BatchNorm1d``, ``BatchNorm2d``, ``BatchNorm3d``, running statistics kept as buffers."""

from __future__ import annotations

from typing import Any

import numpy as np

from deltagrad import creation
from deltagrad.nn import functional as F
from deltagrad.nn import init
from deltagrad.nn.module import Module, check_device
from deltagrad.nn.parameter import Parameter
from deltagrad.tensor import Tensor


class _BatchNorm(Module):
    _expected_dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        check_device(device, type(self).__name__)
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features <= 0:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(creation.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(creation.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", creation.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """running_mean = 0, running_var = 1, num_batches_tracked = 0."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        """Statistics reset, γ = 1, β = 0 (the layer starts as a pure normalization)."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in self._expected_dims:
            dims = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"{type(self).__name__}: expected {dims} input (got {input.ndim}D input "
                             f"of shape {tuple(input.shape)})")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: input has {input.shape[1]} channels (shape "
                             f"{tuple(input.shape)}), expected num_features={self.num_features}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            # momentum=None: a cumulative average, 1/k for the k-th batch
            factor = 1.0 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep else None, self.running_var if keep else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) input, per feature/channel c:

        y = (x − μ_c) / √(σ²_c + eps) · γ_c + β_c

    In training mode μ_c, σ²_c are the batch's mean and (biased) variance over N (and L), and the buffers
    are updated: running ← (1 − momentum) · running + momentum · batch statistic (the unbiased variance
    for ``running_var``); ``momentum=None`` keeps a cumulative average. In eval mode the running statistics
    are used. γ (``weight``, ones) and β (``bias``, zeros) are learned if ``affine`` (β only if ``bias``).
    Backprop to input goes through μ and σ² as well (every sample in the batch influences every output).

    Buffers (in the state dict, as PyTorch's): ``running_mean``, ``running_var``, ``num_batches_tracked``.

    >>> bn = BatchNorm1d(3)
    >>> bn(deltagrad.randn(16, 3)).shape
    (16, 3)
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) input, per channel c (statistics over N, H and W):

        y = (x − μ_c) / √(σ²_c + eps) · γ_c + β_c

    Training/eval behaviour, momentum and buffers as ``BatchNorm1d``'s.

    >>> bn = BatchNorm2d(6)
    >>> bn(deltagrad.randn(4, 6, 8, 8)).shape
    (4, 6, 8, 8)
    """

    _expected_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over (N, C, D, H, W) input, per channel c (statistics over N, D, H and W), as
    ``BatchNorm2d``.

    >>> bn = BatchNorm3d(4)
    >>> bn(deltagrad.randn(2, 4, 3, 5, 5)).shape
    (2, 4, 3, 5, 5)
    """

    _expected_dims = (5,)
