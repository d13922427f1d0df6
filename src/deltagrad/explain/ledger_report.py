"""A ledger summarized: per layer the statistics of its signals, and per parameter its gradient norm, its
update-to-weight ratio and its finite-difference check; as a JSON-ready dict and as a table.

The update-to-weight ratio lr·‖∇W‖/‖W‖ is the relative size of one plain SGD step: around 1e-3 is healthy,
much smaller means the layer hardly learns, much larger that it jumps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltagrad.explain.ledger import FD_EPS, Ledger, ProductCheck

SMALL = 10  # signals with at most this many values are printed in full


def stats(a: np.ndarray | None) -> dict[str, float] | None:
    """mean, population std, min and max of ``a`` (None when it was not recorded)."""
    if a is None or a.size == 0:
        return None
    a = np.asarray(a, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def summarize(ledger: Ledger, lr: float | None = None, fd_entries: int = 3,
              eps: float = FD_EPS) -> dict[str, Any]:
    """``{"loss", "layers": [{"index", "type", "input_shape", "output_shape", "forward", "backward",
    "params": {name: {"grad_norm", "update_ratio", "fd_max_rel_error"}}}]}``: "forward" describes x(l),
    "backward" dL/dx(l); ``update_ratio`` is lr·‖∇W‖/‖W‖ (None without ``lr`` or for W = 0)."""
    fd = {(c.index, c.param): c.max_rel_error for c in ledger.finite_differences(fd_entries, eps)} \
        if fd_entries > 0 else {}
    layers = []
    for rec in ledger:
        params = {}
        for name, g in rec.grads.items():
            norm = None if g is None else float(np.linalg.norm(g))
            w = float(np.linalg.norm(rec.params[name]))
            ratio = lr * norm / w if lr is not None and norm is not None and w > 0 else None
            params[name] = {"grad_norm": norm, "update_ratio": ratio, "fd_max_rel_error": fd.get((rec.index, name))}
        layers.append({"index": rec.index, "type": rec.type,
                       "input_shape": None if rec.input is None else list(rec.input.shape),
                       "output_shape": None if rec.output is None else list(rec.output.shape),
                       "forward": stats(rec.output), "backward": stats(rec.output_grad), "params": params})
    return {"loss": ledger.loss, "layers": layers}


def _g(v: float | None) -> str:
    return "—" if v is None else f"{v:.3g}"


def _shape(s: list[int] | None) -> str:
    return "?" if s is None else "×".join(map(str, s))


def _values(a: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in np.ravel(a)) + "]"


def ledger_text(ledger: Ledger, summary: dict[str, Any], checks: list[ProductCheck] | None = None) -> str:
    """The summary as a table: one line per layer (shapes, statistics of x(l) and of dL/dx(l), the values
    themselves when small), then one line per parameter with its checks."""
    checks = {(c.index, c.param): c for c in (checks or [])}
    lines = [f"loss L = {summary['loss']:.6g}", "",
             "forward signal x(l) going up, backward signal dL/dx(l) coming down (mean ± std [min, max])",
             f"{'#':>3}  {'layer':<12} {'input → output':<26} {'x(l)':<38} dL/dx(l)"]
    for layer, rec in zip(summary["layers"], ledger):
        def cell(s: dict[str, float] | None) -> str:
            return "—" if s is None else f"{s['mean']:.3g} ± {s['std']:.3g} [{s['min']:.3g}, {s['max']:.3g}]"
        io = f"{_shape(layer['input_shape'])} → {_shape(layer['output_shape'])}"
        lines.append(f"{layer['index']:>3}  {layer['type']:<12} {io:<26} {cell(layer['forward']):<38} "
                     f"{cell(layer['backward'])}")
        if rec.output is not None and rec.output.size <= SMALL:
            lines.append(f"{'':>5}x({layer['index']}) = {_values(rec.output)}")
        if rec.output_grad is not None and rec.output_grad.size <= SMALL:
            lines.append(f"{'':>5}dL/dx({layer['index']}) = {_values(rec.output_grad)}")
    lines += ["", "per parameter: the gradient norm, the update-to-weight ratio lr·‖∇W‖/‖W‖, finite differences (the",
              "largest relative error of the entries checked), and ∇W against backward signal × forward signal",
              f"{'parameter':<16} {'‖∇W‖':>10} {'lr·‖∇W‖/‖W‖':>12} {'fin. diff.':>11}  backward × forward"]
    for layer, rec in zip(summary["layers"], ledger):
        for name, p in layer["params"].items():
            c = checks.get((layer["index"], name))
            product = "—" if c is None else f"{c.formula}: rel. difference {c.rel_error:.1e}"
            lines.append(f"{rec.name + '.' + name:<16} {_g(p['grad_norm']):>10} {_g(p['update_ratio']):>12} "
                         f"{_g(p['fd_max_rel_error']):>11}  {product}")
    return "\n".join(lines)
