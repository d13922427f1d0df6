"""The notes' weight-gradient identity, layer by layer: dL/dW(l) = backward signal × forward signal.

Each rule recomputes a layer's parameter gradients in plain NumPy from what the ledger recorded, the layer's
input x(l-1) (the forward signal) and δ = dL/dx(l) (the backward signal arriving at its output), without the
autograd engine, so that comparing them with the engine's gradients shows the identity holding:

    Linear      y = x Wᵀ + b            dW = δᵀ x                    db = Σ δ
    Conv1/2/3d  y = W ⋆ x + b           dW[o, c, k] = Σ δ[o, p] x[c, p·s + k·d]  (δ correlated with x)
                                        db = Σ δ  (over the batch and positions)
    BatchNorm   y = γ x̂ + β             dγ = Σ δ · x̂                 dβ = Σ δ
    Pointwise   y = h(x + b)            db = Σ δ · h'(x + b)

(sums over the batch, and over positions for convolutions and BatchNorm2d/3d). With ``absolute=True`` each rule
sums the absolute values of its terms instead (Σ |δ| |x|...): the scale that rounding errors of the sum are
relative to, which is what a difference between the engine and the product is measured against.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from deltagrad import nn
from deltagrad.autograd import enable_grad
from deltagrad.autograd import grad as autograd_grad
from deltagrad.tensor import Tensor

# padding modes of the convolution layers, as NumPy's np.pad calls them
_NP_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _abs(absolute: bool, *arrays: np.ndarray) -> list[np.ndarray]:
    return [np.abs(a) for a in arrays] if absolute else list(arrays)


def linear_products(x: np.ndarray, delta: np.ndarray, bias: bool, absolute: bool = False
                    ) -> dict[str, tuple[str, np.ndarray]]:
    """dW = δᵀ x, db = Σ δ for y = x Wᵀ + b; x (*, in), δ (*, out)."""
    x, delta = _abs(absolute, x, delta)
    x2, d2 = x.reshape(-1, x.shape[-1]), delta.reshape(-1, delta.shape[-1])
    out = {"weight": ("δᵀ x", d2.T @ x2)}
    if bias:
        out["bias"] = ("Σ δ", d2.sum(axis=0))
    return out


def conv_products(conv: Any, x: np.ndarray, delta: np.ndarray, absolute: bool = False
                  ) -> dict[str, tuple[str, np.ndarray]]:
    """dW[o, c, k] = Σ_{n, p} δ[n, o, p] · x_padded[n, g·C_g + c, p·stride + k·dilation] (the correlation of δ
    with the padded input, per group g), db[o] = Σ_{n, p} δ[n, o, p]; x (N, C_in, *L), δ (N, C_out, *L_out)."""
    nd = len(conv.kernel_size)
    x, delta = _abs(absolute, x, delta)
    if x.ndim == nd + 1:  # an unbatched input (C, *L)
        x, delta = x[None], delta[None]
    pad = ((0, 0), (0, 0)) + tuple(conv._pad_pairs)
    xp = np.pad(x, pad, mode=_NP_PAD[conv.padding_mode])
    out_sizes = delta.shape[2:]
    g, cin, cout = conv.groups, conv.in_channels // conv.groups, conv.out_channels // conv.groups
    dw = np.zeros((conv.out_channels, cin, *conv.kernel_size), dtype=np.result_type(x, delta))
    for k in itertools.product(*(range(n) for n in conv.kernel_size)):
        window = xp[(slice(None), slice(None)) + tuple(
            slice(ki * d, ki * d + s * (n - 1) + 1, s)
            for ki, d, s, n in zip(k, conv.dilation, conv.stride, out_sizes))]
        for gi in range(g):
            d_g = delta[:, gi * cout:(gi + 1) * cout].reshape(delta.shape[0], cout, -1)
            x_g = window[:, gi * cin:(gi + 1) * cin].reshape(window.shape[0], cin, -1)
            dw[(slice(gi * cout, (gi + 1) * cout), slice(None)) + k] = np.einsum("nop,ncp->oc", d_g, x_g)
    out = {"weight": ("δ ⋆ x (correlation)", dw)}
    if conv.bias is not None:
        out["bias"] = ("Σ δ", delta.sum(axis=(0, *range(2, delta.ndim))))
    return out


def batch_norm_products(bn: Any, x: np.ndarray, delta: np.ndarray, training: bool,
                        buffers: Mapping[str, np.ndarray], absolute: bool = False
                        ) -> dict[str, tuple[str, np.ndarray]]:
    """dγ = Σ δ · x̂, dβ = Σ δ, with x̂ = (x − μ)/√(σ² + ε) from the batch (training) or the running statistics."""
    if not bn.affine:
        return {}
    axes = (0, *range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training or buffers.get("running_mean") is None:
        mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)  # σ² biased, as in forward
    else:
        mu, var = buffers["running_mean"].reshape(shape), buffers["running_var"].reshape(shape)
    xhat, delta = _abs(absolute, (x - mu) / np.sqrt(var + bn.eps), delta)
    out = {"weight": ("Σ δ·x̂", (delta * xhat).sum(axis=axes))}
    if bn.bias is not None:
        out["bias"] = ("Σ δ", delta.sum(axis=axes))
    return out


def pointwise_products(pw: Any, x: np.ndarray, delta: np.ndarray, bias: np.ndarray, absolute: bool = False
                       ) -> dict[str, tuple[str, np.ndarray]]:
    """db_i = Σ δ_i · h'(x_i + b_i); h' of the elementwise h is the gradient of Σ h(z) at z = x + b."""
    dim = 0 if x.ndim == 1 else 1
    shape = [1] * x.ndim
    shape[dim] = -1
    z = Tensor(x + bias.reshape(shape), requires_grad=True)
    with enable_grad():
        (h_prime,) = autograd_grad(pw.h(z).sum(), z)
    axes = tuple(a for a in range(x.ndim) if a != dim)
    delta, h_prime = _abs(absolute, delta, h_prime.data)
    return {"bias": ("Σ δ·h'(x + b)", (delta * h_prime).sum(axis=axes))}


def products(module: Any, x: np.ndarray, delta: np.ndarray, params: Mapping[str, np.ndarray],
             training: bool, buffers: Mapping[str, np.ndarray], absolute: bool = False
             ) -> dict[str, tuple[str, np.ndarray]] | None:
    """``{parameter name: (formula, dL/dθ as backward × forward)}`` for a layer deltagrad has a rule for, else
    None. ``params`` and ``buffers`` are the layer's values when it ran."""
    if isinstance(module, nn.Linear):
        return linear_products(x, delta, "bias" in params, absolute)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return conv_products(module, x, delta, absolute)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        return batch_norm_products(module, x, delta, training, buffers, absolute)
    if isinstance(module, nn.Pointwise):
        return pointwise_products(module, x, delta, params["bias"], absolute)
    return None
