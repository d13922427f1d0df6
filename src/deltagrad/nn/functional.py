"""deltagrad.nn.functional: the layers' maths as functions, with PyTorch's names, signatures and defaults.

    import deltagrad.nn.functional as F
    loss = F.cross_entropy(F.linear(F.relu(F.linear(x, W1, b1)), W2, b2), y)

Every function is a thin wrapper over an op (``deltagrad.ops``), so each layer is one graph node with its own
backward (linear, convolution, pooling, softmax cross-entropy are fused), and a captured training step
replays them. Arguments that PyTorch keeps only for compatibility (``inplace``, ``size_average``, ``reduce``)
are accepted: ``inplace=True`` still returns a new tensor (use ``Tensor.relu_()`` and the like to change one in place).
"""

from __future__ import annotations

import warnings
from typing import Any

from deltagrad import backend
from deltagrad.ops import activation as _act
from deltagrad.ops import loss as _loss
from deltagrad.ops import pool as _pool
from deltagrad.ops import shape as _shape
from deltagrad.ops.conv import conv1d, conv2d, conv3d
from deltagrad.ops.elementwise import leaky_relu as _leaky_relu
from deltagrad.ops.elementwise import relu as _relu
from deltagrad.ops.elementwise import sigmoid, tanh
from deltagrad.ops.linalg import linear
from deltagrad.tensor import Tensor

__all__ = ["relu", "leaky_relu", "tanh", "sigmoid", "softmax", "log_softmax", "pad", "linear", "conv1d", "conv2d",
           "conv3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "dropout",
           "batch_norm", "mse_loss", "euclidean_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "flatten", "one_hot"]

Tensors = Any  # a Tensor (or, outside the graph, an array)


# ---- activations -----------------------------------------------------------------------------------------------


def relu(input: Tensors, inplace: bool = False) -> Tensors:
    """max(x, 0) elementwise; dx = g · [x > 0]."""
    return _relu(input)


def leaky_relu(input: Tensors, negative_slope: float = 0.01, inplace: bool = False) -> Tensors:
    """x where x > 0, else negative_slope · x."""
    return _leaky_relu(input, negative_slope)


def softmax(input: Tensors, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensors:
    """eˣ / Σ eˣ along ``dim`` (one stable node); ``dtype`` converts the input first."""
    return _act.softmax(input if dtype is None else input.to(dtype), dim)


def log_softmax(input: Tensors, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensors:
    """x − log Σ eˣ along ``dim`` (one stable node: never log(0) for huge inputs)."""
    return _act.log_softmax(input if dtype is None else input.to(dtype), dim)


# ---- shapes --------------------------------------------------------------------------------------------------


def pad(input: Tensors, pad: tuple[int, ...], mode: str = "constant", value: float | None = None) -> Tensors:
    """Pad the last len(pad)/2 dimensions: ``pad = (left, right, top, bottom, ...)``, constant ``value``."""
    return _shape.pad(input, tuple(pad), mode, value)


def flatten(input: Tensors, start_dim: int = 0, end_dim: int = -1) -> Tensors:
    """Merge dimensions ``start_dim..end_dim`` into one (``torch.flatten``)."""
    return _shape.flatten(input, start_dim, end_dim)


def one_hot(tensor: Tensors, num_classes: int = -1) -> Tensor:
    """Class indices (*) → int64 one-hot (*, num_classes), outside the graph; -1 infers max + 1."""
    idx = tensor.data if isinstance(tensor, Tensor) else backend.xp.asarray(tensor)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got dtype {idx.dtype}")
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got {int(idx.min())}.."
                           f"{int(idx.max())}")
    return Tensor(backend.xp.arange(num_classes) == idx[..., None], dtype=backend.int64)


# ---- pooling -------------------------------------------------------------------------------------------------


def _max_pool(nd: int, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    if return_indices:
        return _pool.max_pool_with_indices(nd, input, kernel_size, stride, padding, dilation, ceil_mode)
    op = (_pool.max_pool1d, _pool.max_pool2d, _pool.max_pool3d)[nd - 1]
    return op(input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d(input: Tensors, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Max over each window of (N, C, L) or (C, L); padding counts as −∞; stride defaults to kernel_size."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensors, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Max over each window of (N, C, H, W) or (C, H, W); ``return_indices`` adds torch's flat indices.

    >>> F.max_pool2d(deltagrad.randn(2, 6, 24, 24), 2).shape   # (2, 6, 12, 12)
    """
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: Tensors, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Max over each window of (N, C, D, H, W) or (C, D, H, W)."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(input: Tensors, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensors:
    """Mean over each window of (N, C, L) or (C, L); zero padding counts unless ``count_include_pad=False``."""
    return _pool.avg_pool1d(input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(input: Tensors, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensors:
    """Mean over each window of (N, C, H, W) or (C, H, W)."""
    return _pool.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(input: Tensors, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensors:
    """Mean over each window of (N, C, D, H, W) or (C, D, H, W)."""
    return _pool.avg_pool3d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


# ---- regularization and normalization --------------------------------------------------------------------------


def dropout(input: Tensors, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensors:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1 − p), so the
    expected value is unchanged; the identity when not ``training``. Masks come from
    ``deltagrad.random.default_generator()`` (``deltagrad.manual_seed`` makes them repeatable)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    return _act.dropout(input, p)


def batch_norm(input: Tensors, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensors:
    """(x − μ) / √(σ² + ε) · weight + bias per channel of (N, C) or (N, C, *).

    ``training``: μ, σ² from the batch, and ``running_mean`` / ``running_var`` (if not None) updated in place:
    r ← (1 − momentum) r + momentum · stat, the variance unbiased. Otherwise the running statistics are used.
    """
    return _act.batch_norm(input, weight, bias, running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)


# ---- losses ----------------------------------------------------------------------------------------------------


def _reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    """PyTorch's legacy ``size_average`` / ``reduce`` flags mapped to ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce are deprecated; use reduction='mean' | 'sum' | 'none'", UserWarning,
                  stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "mean" if size_average and reduce else "sum" if reduce else "none"


def mse_loss(input: Tensors, target: Tensors, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean") -> Tensors:
    """(x − y)², reduced; input and target must have the same shape."""
    return _loss.mse_loss(input, target, reduction=_reduction(size_average, reduce, reduction))


def euclidean_loss(input: Tensors, target: Tensors, reduction: str = "sum") -> Tensors:
    """The notes' Euclidean cost ½‖x − y‖²: 'sum' is ½ Σ (x − y)² over everything, 'mean' averages the
    per-sample ½‖xᵢ − yᵢ‖² over the batch (first) dimension, 'none' returns them (shape (N,))."""
    return _loss.euclidean_loss(input, target, reduction=reduction)


def cross_entropy(input: Tensors, target: Tensors, weight: Any = None, size_average: Any = None,
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensors:
    """Softmax cross-entropy from logits (N, C, *d) against class indices (N, *d) or probabilities (N, C, *d),
    as one fused node: dx = (softmax(x) − onehot(y)) / N for the plain mean.

    >>> F.cross_entropy(deltagrad.tensor([[2.0, 0.5, -1.0]]), deltagrad.tensor([0]))   # 0.2413
    """
    return _loss.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                               reduction=_reduction(size_average, reduce, reduction), label_smoothing=label_smoothing)


def nll_loss(input: Tensors, target: Tensors, weight: Any = None, size_average: Any = None, ignore_index: int = -100,
             reduce: Any = None, reduction: str = "mean") -> Tensors:
    """−w_y · x[y] for log-probabilities x (N, C, *d) and class indices y (N, *d)."""
    return _loss.nll_loss(input, target, weight=weight, ignore_index=ignore_index,
                          reduction=_reduction(size_average, reduce, reduction))


def binary_cross_entropy(input: Tensors, target: Tensors, weight: Any = None, size_average: Any = None,
                         reduce: Any = None, reduction: str = "mean") -> Tensors:
    """−w [y log x + (1 − y) log(1 − x)] for probabilities x ∈ [0, 1]; each log is clamped at −100."""
    return _loss.binary_cross_entropy(input, target, weight, reduction=_reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input: Tensors, target: Tensors, weight: Any = None, size_average: Any = None,
                                     reduce: Any = None, reduction: str = "mean", pos_weight: Any = None) -> Tensors:
    """BCE of sigmoid(x) computed from the logits x, stable for any x; ``pos_weight`` weighs the positives."""
    return _loss.binary_cross_entropy_with_logits(input, target, weight, pos_weight,
                                                  reduction=_reduction(size_average, reduce, reduction))
