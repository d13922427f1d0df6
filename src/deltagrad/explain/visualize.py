"""Unit visualization: backpropagate to the input instead of to the weights.

Backprop gives ``dL/dW`` and, by the same chain rule one step further, the derivative of any unit with respect to
the input image, ``∂x_j(l)/∂x(0)``. Three ways to look at a trained image classifier with it:

- **saliency**: ``∂x_j(L)/∂x(0)`` for the predicted class j of an example, one number per pixel: which pixels
  would change the class's score most (Simonyan et al., 2014);
- **activation maximization**: ``x* = argmax_x x_j(l)(x) − λ₂ ‖x‖² − λ_tv TV(x)`` by gradient ascent on the input
  (from noise or zeros), the image that unit j of layer l likes best; the regularizers keep it image-like;
- **deep dream**: the same ascent on ``mean_j x_j(l)²`` (a whole layer's energy) starting from a real image, which
  amplifies whatever the layer already sees in it.

``layer`` is an index into the model's ``nn.Sequential`` (the output of ``model[layer]``); the output layer is
``len(model) - 1``, whose units are the class scores (logits). A unit of a convolutional layer is one channel
at the centre position: one filter looking at the patch around the image's centre, so its maximizing image
shows the pattern the filter responds to. Inputs and images are in the model's own (normalized) input
space. The model is used in eval mode and put back in its mode; its parameters and ``.grad`` are not touched.

>>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
>>> r = activation_max(m, (1, 2, 2), layer=1, units=[0, 1, 2], steps=50)
>>> bool(np.all(r["activation_after"] > r["activation_before"]))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

import deltagrad
from deltagrad import autograd, nn
from deltagrad.explain.errors import ExplainError


def check_image_shape(input_shape: Sequence[int], what: str = "the model") -> tuple[int, int, int]:
    """``input_shape`` as (channels, height, width), or an ``ExplainError`` saying that these views need images."""
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ExplainError(f"visualize needs an image model (inputs of shape channels × height × width), but "
                           f"{what} has inputs of shape {shape}")
    return shape  # type: ignore[return-value]


def check_layer(model: nn.Module, layer: int) -> int:
    """``layer`` as an index in 0..len(model)−1 of the ``nn.Sequential`` model (negative counts from the end)."""
    if not isinstance(model, nn.Sequential):
        raise ExplainError(f"visualize needs an nn.Sequential model (layers by index), got {type(model).__name__}")
    n = len(model)
    if not isinstance(layer, int) or isinstance(layer, bool) or not -n <= layer < n:
        raise ExplainError(f"layer {layer!r} is out of range: the model has layers 0..{n - 1}")
    return layer % n


@contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()  # no dropout noise, batch norm on its running statistics
    try:
        yield
    finally:
        model.train(was_training)


def layer_output(model: nn.Module, x: deltagrad.Tensor, layer: int) -> deltagrad.Tensor:
    """The output ``x(l)`` of ``model[layer]`` on ``x`` (a forward hook records it; the rest of the model runs)."""
    layer = check_layer(model, layer)
    seen: list[deltagrad.Tensor] = []
    handle = model[layer].register_forward_hook(lambda m, args, out: seen.append(out))
    try:
        model(x)
    finally:
        handle.remove()
    return seen[0]


def unit_activation(out: deltagrad.Tensor, unit: int | None) -> deltagrad.Tensor:
    """Per example (shape (N,)): unit ``unit`` of a layer's output (N, units), or channel ``unit`` at the centre
    position of (N, C, *positions); with ``unit=None`` the layer's energy, the mean of ``x_j(l)²`` over all j."""
    dims = tuple(range(1, out.ndim))
    if unit is None:
        return (out * out).mean(dim=dims)
    if out.ndim < 2 or not 0 <= unit < out.shape[1]:
        raise ExplainError(f"unit {unit} is out of range: the layer's output has shape {tuple(out.shape[1:])} "
                           f"per example, so units 0..{out.shape[1] - 1 if out.ndim >= 2 else 0}")
    return out[(slice(None), unit, *(n // 2 for n in out.shape[2:]))]


def as_input(model: nn.Module, x: Any, requires_grad: bool = False) -> deltagrad.Tensor:
    """``x`` as a Tensor of the model's parameter dtype (a copy), optionally a leaf that requires grad."""
    dtype = next(iter(model.parameters())).dtype
    t = deltagrad.tensor(np.array(x, dtype=dtype))
    return t.requires_grad_(True) if requires_grad else t


def predict(model: nn.Module, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N, classes), predicted classes (N,)) of the model on ``x``, without recording a graph."""
    with _eval(model), deltagrad.no_grad():
        scores = model(as_input(model, x)).numpy()
    return scores, scores.argmax(axis=1)


def saliency(model: nn.Module, x: Any) -> dict[str, np.ndarray]:
    """``∂x_j(L)/∂x(0)`` for each example's predicted class j: the gradient of its score (logit) with respect to
    its input, by one backward pass (each example's score depends on its own input only, so the gradient of
    their sum gives all of them at once).

    Shapes: ``x`` (N, *input) → ``{"saliency": (N, *input), "predicted": (N,), "score": (N,)}``.
    """
    with _eval(model):
        xt = as_input(model, x, requires_grad=True)
        scores = model(xt)
        predicted = scores.detach().numpy().argmax(axis=1)
        picked = scores[np.arange(len(predicted)), predicted]
        (g,) = autograd.grad(picked.sum(), xt)
    return {"saliency": g.numpy(), "predicted": predicted, "score": picked.detach().numpy()}


def total_variation(x: deltagrad.Tensor) -> deltagrad.Tensor:
    """The smooth (squared) total variation of images (N, C, H, W), per example:
    ``TV(x) = Σ (x[h+1, w] − x[h, w])² + (x[h, w+1] − x[h, w])²``; it is small for smooth, blob-like images."""
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    return (dh * dh).sum(dim=(1, 2, 3)) + (dw * dw).sum(dim=(1, 2, 3))


def ascend(objective: Callable[[deltagrad.Tensor], deltagrad.Tensor], x0: np.ndarray, steps: int, lr: float,
           bounds: tuple[float, float] | None = None, normalize: bool = False) -> np.ndarray:
    """Gradient ascent on the input, ``x ← clip(x + lr ∇ₓ J(x))`` for ``steps`` steps, where ``objective(x)``
    returns J per example (shape (N,)); the examples are independent, so their sum is ascended at once.
    ``bounds`` (the data's pixel range) keeps the images ones the data could hold. With ``normalize`` each
    example's step is ``lr ∇J / mean|∇J|`` (as deep dream does), so that ``lr`` is in input units whatever the
    layer's scale."""
    x = np.array(x0)
    for _ in range(steps):
        xt = deltagrad.tensor(x).requires_grad_(True)
        (g,) = autograd.grad(objective(xt).sum(), xt)
        g = g.numpy()
        if normalize:
            g = g / (np.abs(g).mean(axis=tuple(range(1, g.ndim)), keepdims=True) + 1e-12)
        x = x + lr * g
        if bounds is not None:
            np.clip(x, bounds[0], bounds[1], out=x)
    return x


def _check_ascent(steps: int, lr: float, l2: float, tv: float, init: str) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ExplainError(f"steps must be a non-negative integer, got {steps!r}")
    for name, v, positive in (("lr", lr, True), ("l2", l2, False), ("tv", tv, False)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and (v > 0 if positive else v >= 0)):
            raise ExplainError(f"{name} must be a {'positive' if positive else 'non-negative'} number, got {v!r}")
    if init not in ("noise", "zeros"):
        raise ExplainError(f"init must be 'noise' or 'zeros', got {init!r}")


def activation_max(model: nn.Module, input_shape: Sequence[int], layer: int, units: Sequence[int], *,
                   steps: int = 200, lr: float = 0.1, l2: float = 0.05, tv: float = 0.05, init: str = "noise",
                   seed: int = 0, bounds: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """For each unit j in ``units``: ``x* = argmax_x x_j(l)(x) − l2·‖x‖² − tv·TV(x)`` by ``ascend``, from zeros
    (the data's mean image, in normalized input space) or from noise N(0, 1), one data std per pixel (``init``,
    seeded by ``seed``). A ReLU network can be dead at zeros (every unit below its threshold, so every gradient
    zero), which is why noise is the default of the command.

    Returns ``{"images": (U, *input_shape), "activation_before": (U,), "activation_after": (U,),
    "predicted": (U,)}``: unit j's activation on the starting and the final image, and the model's class for the
    final image.
    """
    shape = check_image_shape(input_shape)
    layer = check_layer(model, layer)
    _check_ascent(steps, lr, l2, tv, init)
    units = [int(u) for u in units]
    dtype = next(iter(model.parameters())).dtype
    if init == "zeros":
        x0 = np.zeros((len(units), *shape), dtype=dtype)
    else:
        x0 = np.random.default_rng(seed).standard_normal((len(units), *shape)).astype(dtype)

    def act(x: deltagrad.Tensor) -> deltagrad.Tensor:
        out = layer_output(model, x, layer)
        return deltagrad.stack([unit_activation(out[k:k + 1], u)[0] for k, u in enumerate(units)])

    def objective(x: deltagrad.Tensor) -> deltagrad.Tensor:
        return act(x) - l2 * (x * x).sum(dim=(1, 2, 3)) - tv * total_variation(x)

    with _eval(model):
        with deltagrad.no_grad():
            before = act(deltagrad.tensor(x0)).numpy()
        images = ascend(objective, x0, steps, lr, bounds)
        with deltagrad.no_grad():
            after = act(deltagrad.tensor(images)).numpy()
    return {"images": images, "activation_before": before, "activation_after": after,
            "predicted": predict(model, images)[1]}


def deep_dream(model: nn.Module, images: Any, layer: int, unit: int | None = None, *, steps: int = 20,
               lr: float = 0.05, l2: float = 0.0, tv: float = 0.0,
               bounds: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Amplify what layer ``layer`` sees in real images: ``ascend`` with normalized steps on the layer's energy
    ``mean_j x_j(l)²`` (or on unit ``unit`` alone), with optional L2 and TV regularizers, starting from ``images``
    (N, C, H, W).

    Returns ``{"images": dreamed (N, C, H, W), "activation_before": (N,), "activation_after": (N,),
    "predicted_before": (N,), "predicted": (N,)}``.
    """
    layer = check_layer(model, layer)
    _check_ascent(steps, lr, l2, tv, "zeros")
    x0 = np.array(images, dtype=next(iter(model.parameters())).dtype)
    check_image_shape(x0.shape[1:], "these images")

    def act(x: deltagrad.Tensor) -> deltagrad.Tensor:
        return unit_activation(layer_output(model, x, layer), unit)

    def objective(x: deltagrad.Tensor) -> deltagrad.Tensor:
        return act(x) - l2 * (x * x).sum(dim=(1, 2, 3)) - tv * total_variation(x)

    with _eval(model):
        with deltagrad.no_grad():
            before = act(deltagrad.tensor(x0)).numpy()
        dreamed = ascend(objective, x0, steps, lr, bounds, normalize=True)
        with deltagrad.no_grad():
            after = act(deltagrad.tensor(dreamed)).numpy()
    return {"images": dreamed, "activation_before": before, "activation_after": after,
            "predicted_before": predict(model, x0)[1], "predicted": predict(model, dreamed)[1]}
