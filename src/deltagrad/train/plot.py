"""Training curves as a PNG: loss, accuracy and per-layer gradient norms per epoch (matplotlib, imported lazily)."""

from __future__ import annotations

import io
from typing import Any


def curves_png(history: list[dict[str, Any]], title: str = "") -> bytes:
    """The PNG bytes of a figure with one panel each for loss, accuracy (classification only) and the
    per-layer gradient norms (log scale: vanishing or exploding gradients show as lines apart)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    epochs = [h["epoch"] for h in history]
    has_acc = any(h.get("train_accuracy") is not None for h in history)
    panels = 3 if has_acc else 2
    fig = Figure(figsize=(4.2 * panels, 3.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, panels)

    def series(key: str) -> list[float]:
        return [float(h[key]) if isinstance(h.get(key), (int, float)) else float("nan") for h in history]

    ax = axes[0]
    ax.plot(epochs, series("train_loss"), marker=".", label="train")
    ax.plot(epochs, series("val_loss"), marker=".", label="validation")
    ax.set(title="loss", xlabel="epoch")
    ax.legend()
    if has_acc:
        ax = axes[1]
        ax.plot(epochs, [100 * v for v in series("train_accuracy")], marker=".", label="train")
        ax.plot(epochs, [100 * v for v in series("val_accuracy")], marker=".", label="validation")
        ax.set(title="accuracy (%)", xlabel="epoch")
        ax.legend()
    ax = axes[-1]
    layers = list(history[-1].get("grad_norm", {})) if history else []
    for name in layers:
        ax.plot(epochs, [h.get("grad_norm", {}).get(name, float("nan")) for h in history], marker=".", label=name)
    ax.set(title="gradient norm per layer (RMS over steps)", xlabel="epoch")
    if layers:
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
