"""Gradient flow: how big the forward and backward signals are at each layer of a network (seed 004, measured).

The notes' backward recursion (``seeds/004_9c4cb9f1c3355601.txt``)

    dL/dz(m) = (W(m+1)ᵀ dL/dz(m+1)) ∘ h'(z(m))

multiplies the backward signal by one weight matrix and one activation derivative per layer, so over many layers
it shrinks (vanishes) or grows (explodes) geometrically unless the weights' scale is chosen for it: with
``o = Σᵢ wᵢ xᵢ``, ``xᵢ ~ N(0, 1)`` and ``wᵢ ~ N(0, σ²)``, ``Var[o] = n_in σ²`` (Xavier's rule keeps it near 1).

For every weight layer l (Linear or Conv) this module measures, at its output ``x(l)`` (the pre-activation z(l)
of the notes, the place where ``dL/dW(l) = dL/dx(l)ᵀ x(l-1)`` is formed):

- ``act_std``: the population std of ``x(l)`` over the batch and the units;
- ``grad_rms``: the RMS of the backward signal ``dL/dx(l)`` arriving there;
- ``weight_grad_rms``: the RMS of ``dL/dW(l)``.

Lists run from the input side to the output side. ``gradient_flow`` does it for any model and batch (a trained
run's model, say); ``stack_flow`` builds the notes' experiment, a deep stack of equal Linear layers at
initialization; ``variance_check`` measures ``Var[o] = n_in σ²`` itself.

>>> res = stack_flow(depth=20, width=64, activation="tanh", init="normal")
>>> res["grad_rms"][0] / res["grad_rms"][-1] > 1000      # exploding
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import deltagrad
from deltagrad import autograd, nn
from deltagrad import random as dg_random
from deltagrad.explain.errors import ExplainError
from deltagrad.nn import init as nn_init

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
INITS = ("normal", "small", "xavier", "kaiming")


def init_weight(weight: deltagrad.Tensor, init: str, activation: str, generator: np.random.Generator) -> None:
    """Fill ``weight`` (out × in) in place with one of the studied initializations.

    ============  =================================================================================
    ``normal``    N(0, 1)
    ``small``     N(0, 0.01²)
    ``xavier``    Glorot normal, σ = √(2 / (n_in + n_out)): the notes' compromise, with gain 1 (Glorot's
                  paper and the default of ``nn.init.xavier_normal_``)
    ``kaiming``   He normal, σ = gain / √n_in with ``nn.init``'s gain for the activation
                  (``calculate_gain``: sigmoid 1, tanh 5/3, relu √2), as ``kaiming_normal_(w, nonlinearity=...)``
    ============  =================================================================================

    Why Xavier without a gain: for a square layer (n_in = n_out) Xavier with gain g *is* Kaiming with gain g, so
    giving both the activation's gain would draw the same weights twice; this way the two differ exactly by the
    gain, and the study shows what it is for (ReLU halves the variance at every layer without √2).
    """
    if init == "normal":
        nn_init.normal_(weight, 0.0, 1.0, generator)
    elif init == "small":
        nn_init.normal_(weight, 0.0, 0.01, generator)
    elif init == "xavier":
        nn_init.xavier_normal_(weight, 1.0, generator)
    elif init == "kaiming":
        nn_init.kaiming_normal_(weight, nonlinearity=activation, generator=generator)
    else:
        raise ExplainError(f"unknown initialization {init!r} (known: {', '.join(INITS)})")


def build_stack(depth: int, width: int, activation: str, init: str, seed: int = 0) -> nn.Sequential:
    """``depth`` × (Linear(width, width) → activation), float64, weights drawn by ``init`` and biases zero (so
    that only the weights' scale acts, as in the notes' derivation); the activation follows every layer, the
    last included (the notes' ``a(m) = h(z(m))`` for all m). The global generator is left as it was."""
    _check_positive(depth=depth, width=width)
    if activation not in ACTIVATIONS:
        raise ExplainError(f"unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
    if init not in INITS:
        raise ExplainError(f"unknown initialization {init!r} (known: {', '.join(INITS)})")
    state = dg_random.get_rng_state()  # Linear's own default init draws from the global generator
    try:
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(width, width, dtype=np.float64), ACTIVATIONS[activation]()]
    finally:
        dg_random.set_rng_state(state)
    gen = np.random.default_rng(seed)
    for layer in layers[::2]:
        init_weight(layer.weight, init, activation, gen)
        nn_init.zeros_(layer.bias)
    return nn.Sequential(*layers)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs of the layers with a weight matrix or kernel (Linear, Conv), in order."""
    found = []
    for name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if isinstance(w, nn.Parameter) and w.ndim >= 2 and not list(mod.children()):
            found.append((name, mod))
    return found


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a)))) if a.size else 0.0


def gradient_flow(model: nn.Module, x: Any, y: Any, loss_fn: Any) -> dict[str, Any]:
    """One forward and backward pass of ``loss_fn(model(x), y)``; per weight layer the std of its output x(l),
    the RMS of dL/dx(l) and of dL/dW(l), input side first.

    ``x`` and ``y`` are arrays or Tensors (``x`` is cast to the model's dtype). The model is measured in eval
    mode (no dropout noise, batch norm on its running statistics) and then put back in its mode; its
    parameters' ``.grad`` are left untouched (the gradients come from ``autograd.grad``).

    Returns ``{"layers": [names], "act_std": [...], "grad_rms": [...], "weight_grad_rms": [...], "loss": L}``.

    >>> m = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    >>> gradient_flow(m, np.ones((5, 4)), np.zeros((5, 2)), nn.EuclideanLoss())["layers"]
    ['[0] Linear', '[2] Linear']
    """
    layers = weight_layers(model)
    if not layers:
        raise ExplainError(f"the model has no Linear or Conv layer to measure ({type(model).__name__})")
    outputs: dict[str, list[deltagrad.Tensor]] = {name: [] for name, _ in layers}
    handles = [mod.register_forward_hook(lambda m, args, out, name=name: outputs[name].append(out))
               for name, mod in layers]
    was_training = model.training
    dtype = layers[0][1].weight.dtype
    xt = x if isinstance(x, deltagrad.Tensor) else deltagrad.tensor(np.asarray(x, dtype=dtype))
    yt = y if isinstance(y, deltagrad.Tensor) else deltagrad.tensor(np.asarray(y))
    try:
        model.eval()
        with np.errstate(all="ignore"):  # a diverging configuration overflows to inf: that is the finding
            loss = loss_fn(model(xt), yt)
            twice = [name for name, outs in outputs.items() if len(outs) != 1]
            if twice:
                raise ExplainError(f"layer {twice[0]} ran {len(outputs[twice[0]])} times in one forward pass; "
                                   "gradient flow needs each weight layer used once")
            outs = [outputs[name][0] for name, _ in layers]
            weights = [mod.weight for _, mod in layers]
            grads = autograd.grad(loss, outs + weights, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    n = len(layers)

    def rms(g: deltagrad.Tensor | None) -> float:
        return 0.0 if g is None else _rms(g.numpy())

    with np.errstate(all="ignore"):
        return {"layers": [f"[{name}] {type(mod).__name__}" for name, mod in layers],
                "act_std": [float(np.std(o.detach().numpy())) for o in outs],
                "grad_rms": [rms(g) for g in grads[:n]],
                "weight_grad_rms": [rms(g) for g in grads[n:]],
                "loss": float(loss.item())}


def stack_flow(depth: int = 20, width: int = 64, activation: str = "tanh", init: str = "xavier",
               batch: int = 256, seed: int = 0) -> dict[str, Any]:
    """The notes' experiment: ``build_stack(depth, width, activation, init)`` at initialization, a batch of
    ``x ~ N(0, 1)`` inputs (batch × width) and targets ``y ~ N(0, 1)``, the notes' Euclidean cost
    ``L = ½ ‖x(L) − y‖²`` summed over the batch (so each example's backward signal does not depend on the batch
    size), one backward pass: ``gradient_flow``'s figures, one per Linear layer, with the configuration.

    >>> r = stack_flow(20, 64, "sigmoid", "xavier")
    >>> r["grad_rms"][0] < r["grad_rms"][-1] / 1000           # vanishing
    True
    """
    _check_positive(batch=batch)
    model = build_stack(depth, width, activation, init, seed)
    gen = np.random.default_rng([seed, 1])  # the data's own stream, apart from the weights'
    x = gen.standard_normal((batch, width))
    y = gen.standard_normal((batch, width))
    flow = gradient_flow(model, x, y, nn.EuclideanLoss())
    return {"activation": activation, "init": init, "depth": depth, "width": width, **flow}


def variance_check(n_in: int = 64, sigma2: float = 1.0, samples: int = 1 << 20, seed: int = 0) -> dict[str, Any]:
    """The notes' derivation for one linear unit ``o = Σᵢ wᵢ xᵢ`` with ``xᵢ ~ N(0, 1)``, ``wᵢ ~ N(0, σ²)``:
    ``E[o] = 0`` and ``Var[o] = Σᵢ E[wᵢ²] E[xᵢ²] = n_in σ²``, measured on ``samples`` draws of (w, x).

    Returns ``{"n_in", "sigma2", "predicted", "measured"}``; the relative error is about √(2/samples)·√(1+2/n_in).

    >>> v = variance_check(64, 1.0)
    >>> abs(v["measured"] / v["predicted"] - 1) < 0.01
    True
    """
    _check_positive(n_in=n_in, samples=samples)
    if not (isinstance(sigma2, (int, float)) and math.isfinite(sigma2) and sigma2 > 0):
        raise ExplainError(f"sigma2 must be a positive number, got {sigma2!r}")
    gen = np.random.default_rng(seed)
    total, chunk, done = 0.0, 1 << 14, 0
    while done < samples:  # in chunks: a million draws of 64 inputs would be half a gigabyte at once
        k = min(chunk, samples - done)
        w = gen.normal(0.0, math.sqrt(sigma2), (k, n_in))
        x = gen.standard_normal((k, n_in))
        o = np.einsum("ki,ki->k", w, x)
        total += float(np.sum(o * o))  # E[o] = 0 is known, so Var[o] = E[o²]
        done += k
    return {"n_in": n_in, "sigma2": float(sigma2), "predicted": n_in * float(sigma2), "measured": total / samples}


def verdict(grad_rms: list[float]) -> str:
    """A word for how the backward signal changes from the output side to the input side:
    ``vanishing`` (input side over 1000× smaller), ``exploding`` (over 1000× larger), ``stable`` (within 10×),
    ``drifting`` (in between) or ``overflow`` (not finite)."""
    first, last = grad_rms[0], grad_rms[-1]
    if not (math.isfinite(first) and math.isfinite(last)):
        return "overflow"
    if last == 0.0:
        return "stable" if first == 0.0 else "exploding"
    ratio = first / last
    if ratio < 1e-3:
        return "vanishing"
    if ratio > 1e3:
        return "exploding"
    return "stable" if 0.1 <= ratio <= 10 else "drifting"


def _check_positive(**values: Any) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ExplainError(f"{name} must be a positive integer, got {v!r}")
