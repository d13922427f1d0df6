"""The studies behind ``deltagrad gradients`` and ``deltagrad visualize``, as library calls: each returns the
figures (JSON-ready) and the PNG pictures as bytes, and writes nothing; the command line prints and saves them.

>>> study = gradient_study(depth=20, width=64, activations=["tanh"], inits=["normal", "xavier"])
>>> [r["init"] for r in study["results"]], study["variance_check"]["predicted"]
(['normal', 'xavier'], 64.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deltagrad import nn
from deltagrad.explain import plots
from deltagrad.explain import visualize as V
from deltagrad.explain.errors import ExplainError
from deltagrad.explain.gradient_flow import ACTIVATIONS, INITS, gradient_flow, stack_flow, variance_check

KINDS = ("saliency", "activation_max", "deep_dream")
HIDDEN_UNITS_SHOWN = 10  # --layer without --unit: its first units


def gradient_study(depth: int = 20, width: int = 64, activations: Sequence[str] = ("sigmoid", "tanh", "relu"),
                   inits: Sequence[str] = INITS, batch: int = 256, seed: int = 0,
                   samples: int = 1 << 20) -> dict[str, Any]:
    """``stack_flow`` for every (activation, init) pair, and ``variance_check`` for one of the stack's layers with
    N(0, 1) weights (n_in = width, σ² = 1). Returns ``{"results": [...], "variance_check": {...}, "png": bytes}``."""
    for a in activations:
        if a not in ACTIVATIONS:
            raise ExplainError(f"unknown activation {a!r} in --activations (known: {', '.join(ACTIVATIONS)})")
    for i in inits:
        if i not in INITS:
            raise ExplainError(f"unknown initialization {i!r} in --inits (known: {', '.join(INITS)})")
    if not activations or not inits:
        raise ExplainError("give at least one activation and one initialization")
    results = [stack_flow(depth, width, a, i, batch, seed) for a in activations for i in inits]
    check = variance_check(width, 1.0, samples, seed)
    title = (f"Gradient flow at initialization: {depth} Linear layers of {width} units, batch {batch} of N(0, 1) "
             f"inputs, seed {seed}")
    return {"results": results, "variance_check": check, "png": plots.gradient_flow_png(results, title)}


def run_gradient_study(model: nn.Module, x: np.ndarray, y: np.ndarray, loss_fn: Any, label: str) -> dict[str, Any]:
    """``gradient_flow`` of a trained model on a batch of its data. Returns ``{"results": [flow], "png": bytes}``
    with the flow labelled ``label``."""
    flow = {"label": label, "examples": int(len(x)), **gradient_flow(model, x, y, loss_fn)}
    title = f"Gradient flow of {label} on {len(x)} training examples (loss {flow['loss']:.4g})"
    return {"results": [flow], "png": plots.gradient_flow_png([flow], title)}


def default_dream_layer(model: nn.Sequential) -> int:
    """The layer deep dream amplifies by default: the last activation (ReLU, Tanh...) before the output layer,
    the richest hidden features; the layer before the last where there is none."""
    acts = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)
    found = [i for i, m in enumerate(model) if isinstance(m, acts) and i < len(model) - 1]
    return found[-1] if found else max(len(model) - 2, 0)


def one_per_class(y: np.ndarray, classes: int, limit: int = 10) -> list[int]:
    """The index of the first example of each class (classes in order, at most ``limit``): a grid of tiles
    that shows every digit once."""
    picked = []
    for c in range(classes):
        hits = np.flatnonzero(y == c)
        if len(hits):
            picked.append(int(hits[0]))
        if len(picked) == limit:
            break
    return picked


def _entry(kind: str, layer: int, unit: int | None, file: str, before: Any, after: Any, predicted: Any,
           **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "layer": layer, "unit": unit, "file": file,
            "activation_before": None if before is None else float(before),
            "activation_after": None if after is None else float(after), "predicted_class": int(predicted), **extra}


def visual_study(model: nn.Sequential, x: np.ndarray, y: np.ndarray, *, mean: Any, std: Any,
                 classes: Sequence[Any], bounds: tuple[float, float], kinds: Sequence[str] = KINDS,
                 layer: int | None = None, unit: int | None = None, l2: float | None = None, tv: float | None = None,
                 steps: int | None = None, lr: float | None = None, init: str = "noise",
                 seed: int = 0) -> list[dict[str, Any]]:
    """Saliency, activation maximization and deep dream of an image classifier on its test images ``x``
    (normalized, (N, C, H, W)) with labels ``y``.

    - saliency of the first test image of each class;
    - activation maximization of every output class, and of unit ``unit`` of layer ``layer`` (or that layer's
      first units when ``unit`` is None);
    - deep dream of the same test images on layer ``layer`` (default ``default_dream_layer``), unit ``unit``.

    ``l2``, ``tv``, ``steps``, ``lr`` override each method's defaults; ``bounds`` is the data's pixel range in
    normalized units (images stay in it), ``mean`` and ``std`` undo the normalization for display.
    Returns one ``{"name": FILE.png, "png": bytes, "images": [JSON entries, "file" left to fill]}`` per picture.
    """
    V.check_image_shape(x.shape[1:], "the test set")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ExplainError(f"unknown --kind {', '.join(unknown) or '(none)'} (known: {', '.join(KINDS)})")
    if unit is not None and layer is None:
        raise ExplainError("--unit needs --layer (the layer whose unit to show)")
    out_layer = len(model) - 1
    if layer is not None:
        layer = V.check_layer(model, layer)
    names = [str(c) for c in classes]
    value_range = (float(plots.to_pixels(np.array(bounds[0]), mean, std).min()),
                   float(plots.to_pixels(np.array(bounds[1]), mean, std).max()))
    picks = one_per_class(y, len(names))
    test_x = x[picks]
    overrides = {k: v for k, v in (("l2", l2), ("tv", tv), ("steps", steps), ("lr", lr)) if v is not None}
    pictures = []

    if "saliency" in kinds:
        s = V.saliency(model, test_x)
        name = "saliency.png"
        png = plots.saliency_png(plots.to_pixels(test_x, mean, std), s["saliency"], [names[int(y[i])] for i in picks],
                                 [names[p] for p in s["predicted"]], value_range,
                                 "Saliency: ∂x_j(L)/∂x(0), the gradient of the predicted class's score with respect "
                                 "to the input")
        pictures.append({"name": name, "png": png, "images": [
            _entry("saliency", out_layer, int(p), name, sc, None, p, example=i, target=int(y[i]))
            for i, p, sc in zip(picks, s["predicted"], s["score"])]})

    if "activation_max" in kinds:
        jobs = [(out_layer, list(range(len(names))), "activation_max.png")]
        if layer is not None:
            n_units = V.layer_output(model, V.as_input(model, test_x[:1]), layer).shape[1]
            units = [unit] if unit is not None else list(range(min(HIDDEN_UNITS_SHOWN, n_units)))
            jobs.append((layer, units, f"activation_max_layer{layer}.png"))
        for lay, units, name in jobs:
            r = V.activation_max(model, x.shape[1:], lay, units, init=init, seed=seed, bounds=bounds, **overrides)
            what = type(model[lay]).__name__
            is_out = lay == out_layer
            labels = [f"class {names[u]}" if is_out else f"unit {u}" for u in units]
            title = (f"Activation maximization, layer {lay} ({what}{', the class scores' if is_out else ''}): "
                     f"x* = argmax_x x_j − λ₂‖x‖² − λ_tv TV(x)\nunder each image: x_j at the start → at x*")
            png = plots.activation_max_png(plots.to_pixels(r["images"], mean, std), labels, r["activation_before"],
                                           r["activation_after"], [names[p] for p in r["predicted"]], value_range,
                                           title)
            pictures.append({"name": name, "png": png, "images": [
                _entry("activation_max", lay, u, name, b, a, p, **({"label": names[u]} if is_out else {}))
                for u, b, a, p in zip(units, r["activation_before"], r["activation_after"], r["predicted"])]})

    if "deep_dream" in kinds:
        lay = default_dream_layer(model) if layer is None else layer
        r = V.deep_dream(model, test_x, lay, unit, bounds=bounds, **overrides)
        name = "deep_dream.png"
        what = f"unit {unit} of layer {lay}" if unit is not None else f"layer {lay}"
        png = plots.deep_dream_png(plots.to_pixels(test_x, mean, std), plots.to_pixels(r["images"], mean, std),
                                   [names[p] for p in r["predicted_before"]], [names[p] for p in r["predicted"]],
                                   r["activation_before"], r["activation_after"], value_range,
                                   f"Deep dream: gradient ascent on the energy of {what} "
                                   f"({type(model[lay]).__name__}) from test images")
        pictures.append({"name": name, "png": png, "images": [
            _entry("deep_dream", lay, unit, name, b, a, p, example=i, predicted_before=int(pb))
            for i, b, a, p, pb in zip(picks, r["activation_before"], r["activation_after"], r["predicted"],
                                      r["predicted_before"])]})
    return pictures
