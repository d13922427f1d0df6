"""The pictures of the gradient-flow study and of unit visualization, as PNG bytes (matplotlib, imported lazily
inside each function; ``matplotlib.figure.Figure``, no pyplot, so no GUI backend and no global state).

Images are drawn in the data's own pixel units (the normalization undone with ``mean`` and ``std``) with
nearest-neighbour upscaling, so that an 8×8 digit reads as its 64 pixels.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

# one colour per activation, one line style per initialization: a configuration is read off at a glance
_COLORS = {"sigmoid": "tab:blue", "tanh": "tab:orange", "relu": "tab:green"}
_STYLES = {"normal": "-", "small": ":", "xavier": "--", "kaiming": "-."}
_MARKERS = {"normal": "o", "small": "v", "xavier": "s", "kaiming": "D"}


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _title(fig: Any, text: str) -> None:
    """The figure's title, wrapped to the figure's width (a grid of one tile is narrow)."""
    width = max(20, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")))


def _positive(values: Sequence[float]) -> list[float]:
    """Values for a log axis: zero and non-finite become NaN (a gap in the line, not an error)."""
    return [v if v is not None and np.isfinite(v) and v > 0 else float("nan") for v in values]


def gradient_flow_png(results: list[dict[str, Any]], title: str) -> bytes:
    """Three log-scale panels, one line per configuration (or per run), layer on the x axis (input side at the
    left): std of the forward signal x(l), RMS of the backward signal dL/dx(l), RMS of dL/dW(l)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 5.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    stack = "activation" in results[0]
    panels = (("act_std", "forward signal x(l), the output of layer l", "std"),
              ("grad_rms", "backward signal dL/dx(l)", "RMS"),
              ("weight_grad_rms", "weight gradient dL/dW(l)" + (" = dL/dx(l)ᵀ x(l−1)" if stack else ""), "RMS"))
    seen: dict[tuple, str] = {}
    labels = []
    for r in results:  # a configuration that draws the very same weights as an earlier one says so
        act, init = r.get("activation"), r.get("init")
        label = f"{act} + {init}" if act else r.get("label", "model")
        key = (tuple(r["grad_rms"]), tuple(r["act_std"]))
        labels.append(f"{label} (= {seen[key]})" if key in seen else label)
        seen.setdefault(key, label)
    for ax, (key, name, stat) in zip(axes, panels):
        for r, label in zip(results, labels):
            act, init = r.get("activation"), r.get("init")
            ax.plot(range(1, len(r[key]) + 1), _positive(r[key]), color=_COLORS.get(act),
                    linestyle=_STYLES.get(init, "-"), marker=_MARKERS.get(init, "o"), markersize=3, label=label)
        ax.set_yscale("log")
        ax.set(title=name, xlabel="layer l (1 = input side)", ylabel=stat)
        ax.grid(True, which="major", alpha=0.3)
        n = max(len(r[key]) for r in results)
        ax.set_xlim(0.5, n + 0.5)
        if any(v is None or not np.isfinite(v) for r in results for v in r[key]):
            ax.text(0.5, 0.5, "some values overflowed to inf\n(beyond 1e308) and are not drawn", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9, color="tab:red")
        if not stack and len(results) == 1:  # a run's few layers: name them
            ax.set_xticks(range(1, n + 1), results[0]["layers"], rotation=30 if n > 4 else 0, fontsize="small")
            ax.set_xlabel("weight layer [index in the model] (input side first)")
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].annotate("forward pass →", xy=(0.98, 0.02), xycoords="axes fraction", ha="right", fontsize=9,
                     color="0.35")
    axes[1].annotate("← backward pass", xy=(0.02, 0.02), xycoords="axes fraction", ha="left", fontsize=9,
                     color="0.35")
    title_legend = "activation + init" if stack else "run"
    axes[-1].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5), title=title_legend)
    _title(fig, title)
    return _png(fig)


def to_pixels(x: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """Undo the normalization ``(raw − mean) / std`` of images (N, C, H, W); ``mean``/``std`` are numbers or one
    per channel."""
    mean = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1) if np.ndim(mean) else float(mean)
    std = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1) if np.ndim(std) else float(std)
    return np.asarray(x, dtype=np.float64) * std + mean


def _tile(ax: Any, image: np.ndarray, vmin: float, vmax: float, cmap: str = "gray_r") -> Any:
    """Draw one (C, H, W) image, nearest-neighbour, without ticks; channels averaged unless C is 1 or 3."""
    ax.set_xticks([])
    ax.set_yticks([])
    if image.shape[0] == 3:
        return ax.imshow(np.clip((image.transpose(1, 2, 0) - vmin) / (vmax - vmin or 1), 0, 1),
                         interpolation="nearest")
    return ax.imshow(image.mean(axis=0), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")


def _grid(n: int, rows_per: int, height: float = 1.7) -> tuple[Any, np.ndarray, int]:
    from matplotlib.figure import Figure

    cols = min(n, 10)
    blocks = -(-n // cols)
    fig = Figure(figsize=(max(1.45 * cols + 1.6, 4.5), height * rows_per * blocks + 1.2), dpi=100,
                 layout="constrained")
    axes = np.asarray(fig.subplots(rows_per * blocks, cols, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    return fig, axes, cols


def _slot(axes: np.ndarray, k: int, row: int, cols: int, rows_per: int) -> Any:
    ax = axes[(k // cols) * rows_per + row, k % cols]
    ax.set_axis_on()
    return ax


def saliency_png(pixels: np.ndarray, saliency: np.ndarray, targets: Sequence[Any], predicted: Sequence[Any],
                 value_range: tuple[float, float], title: str) -> bytes:
    """Each example (row 1, in pixels) above its saliency map (row 2): ∂score/∂pixel of the predicted class,
    signed, each map scaled to its largest |value|; red pixels raise the score when brightened (more ink)."""
    fig, axes, cols = _grid(len(pixels), 2)
    image = None
    for k in range(len(pixels)):
        ax = _slot(axes, k, 0, cols, 2)
        _tile(ax, pixels[k], *value_range)
        ax.set_xlabel(f"true {targets[k]}, pred {predicted[k]}", fontsize=9)
        s = saliency[k].sum(axis=0)
        scale = float(np.abs(s).max()) or 1.0
        ax = _slot(axes, k, 1, cols, 2)
        image = ax.imshow(s / scale, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"∂ score({predicted[k]}) / ∂x", fontsize=9)
    axes[0, 0].set_ylabel("test image", fontsize=9)
    axes[1, 0].set_ylabel("saliency", fontsize=9)
    title += "\nred: more ink there would raise the score, blue: lower it"
    if image is not None:
        fig.colorbar(image, ax=axes[1::2, :].ravel().tolist(), shrink=0.9,
                     label="∂score/∂pixel, scaled\nto max |·| = 1")
    _title(fig, title)
    return _png(fig)


def activation_max_png(pixels: np.ndarray, labels: Sequence[str], before: Sequence[float], after: Sequence[float],
                       predicted: Sequence[Any], value_range: tuple[float, float], title: str) -> bytes:
    """One tile per unit: the image found by gradient ascent, with the unit's activation before → after and the
    class the model gives the image."""
    fig, axes, cols = _grid(len(pixels), 1, height=2.0)
    image = None
    for k in range(len(pixels)):
        ax = _slot(axes, k, 0, cols, 1)
        image = _tile(ax, pixels[k], *value_range)
        ax.set_title(labels[k], fontsize=10)
        ax.set_xlabel(f"{before[k]:.2f} → {after[k]:.2f}\npredicted {predicted[k]}", fontsize=9)
    if image is not None and pixels.shape[1] != 3:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85, label="pixel value")
    _title(fig, title)
    return _png(fig)


def deep_dream_png(originals: np.ndarray, dreamed: np.ndarray, pred_before: Sequence[Any], pred_after: Sequence[Any],
                   before: Sequence[float], after: Sequence[float], value_range: tuple[float, float],
                   title: str) -> bytes:
    """Per test image three rows: the image, the dreamed image, and their difference (a signed heat map in pixel
    units: what the layer's amplification added in red and removed in blue)."""
    fig, axes, cols = _grid(len(originals), 3)
    diff_image = None
    limit = float(np.abs(dreamed - originals).max()) or 1.0
    for k in range(len(originals)):
        ax = _slot(axes, k, 0, cols, 3)
        _tile(ax, originals[k], *value_range)
        ax.set_xlabel(f"pred {pred_before[k]}", fontsize=9)
        ax = _slot(axes, k, 1, cols, 3)
        _tile(ax, dreamed[k], *value_range)
        ax.set_xlabel(f"pred {pred_after[k]}, energy ×{after[k] / before[k]:.1f}" if before[k] else
                      f"pred {pred_after[k]}", fontsize=9)
        ax = _slot(axes, k, 2, cols, 3)
        diff_image = ax.imshow((dreamed[k] - originals[k]).mean(axis=0), cmap="RdBu_r", vmin=-limit, vmax=limit,
                               interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("test image", fontsize=9)
    axes[1, 0].set_ylabel("dreamed", fontsize=9)
    axes[2, 0].set_ylabel("change", fontsize=9)
    if diff_image is not None:
        fig.colorbar(diff_image, ax=axes[2::3, :].ravel().tolist(), shrink=0.9, label="change in pixel value")
    _title(fig, title)
    return _png(fig)
