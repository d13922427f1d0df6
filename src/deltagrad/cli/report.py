"""Text the ``deltagrad`` command prints: result lines, prediction CSV, a run's description, JSON."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """``obj`` with NumPy values as Python ones and non-finite floats as strings (valid JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj


def _acc(v: Any) -> str:
    return f"{100 * v:.2f}%" if isinstance(v, (int, float)) else "n/a"


def _loss(v: Any) -> str:
    """A loss; ``None`` means the part had no examples (not NaN: there was nothing to measure)."""
    return f"{v:.4f}" if isinstance(v, (int, float)) else "n/a (no examples)" if v is None else str(v)


def summary_line(result: dict[str, Any]) -> str:
    acc = f", test accuracy {_acc(result['test_accuracy'])}" if result.get("test_accuracy") is not None else ""
    return f"test loss {_loss(result['test_loss'])}{acc} ({result['test_examples']} examples); run saved in " \
           f"{result['run']}"


def eval_line(result: dict[str, Any], split: str) -> str:
    acc = result.get(f"{split}_accuracy")
    acc_text = f"  {split} accuracy {_acc(acc)}" if acc is not None else ""
    return (f"{split} loss {_loss(result[f'{split}_loss'])}{acc_text}  ({result[f'{split}_examples']} examples of "
            f"{result['dataset']})")


def predictions_csv(result: dict[str, Any]) -> str:
    """``index,prediction[,confidence][,target]`` (regression with several outputs: ``prediction_0``...)."""
    preds = result["predictions"]
    conf = result.get("confidence")
    targets = result.get("targets")
    out = io.StringIO()
    multi = isinstance(preds, np.ndarray) and preds.ndim == 2 and preds.shape[1] > 1

    def cells(v: Any) -> list[str]:
        arr = np.atleast_1d(np.asarray(v))
        return [f"{x:.6g}" if isinstance(x, (float, np.floating)) else str(x) for x in arr.tolist()]

    width = preds.shape[1] if multi else 1
    head = ["index"] + ([f"prediction_{k}" for k in range(width)] if multi else ["prediction"])
    if conf is not None:
        head.append("confidence")
    if targets is not None:
        head += [f"target_{k}" for k in range(width)] if multi else ["target"]
    out.write(",".join(head) + "\n")
    for i in range(len(preds)):
        row = [str(i), *cells(preds[i])]
        if conf is not None:
            row.append(f"{float(conf[i]):.4f}")
        if targets is not None:
            row += cells(targets[i])
        out.write(",".join(row) + "\n")
    return out.getvalue()


def _layer(spec: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "type")
    return f"{spec['type']}({args})"


def info_text(info: dict[str, Any]) -> str:
    cfg = info["config"]
    d, m, o, s, t = (cfg[k] for k in ("data", "model", "optimizer", "scheduler", "train"))
    lines = [f"run         {info['run']}"]
    shape = "x".join(str(v) for v in d.get("input_shape") or []) or "?"
    kind = f"{d.get('num_outputs')} classes" if d.get("task") == "classification" else "regression"
    lines.append(f"data        {d['dataset']}: {d.get('description', '')} ({kind}, inputs {shape})")
    params = f" ({info['parameters']:,} parameters)" if "parameters" in info else ""
    lines.append(f"model       {m['name']}{params}")
    for k, spec in enumerate(m.get("layers") or []):
        lines.append(f"  {k:>2}  {_layer(spec)}")
    lines.append("optimizer   " + o["name"] + "".join(f" {k}={v}" for k, v in o.items() if k != "name"))
    lines.append("schedule    " + s["name"] + "".join(f" {k}={v}" for k, v in s.items() if k != "name"))
    done = f"{info['epoch']}/{t['epochs']} epochs, {info['step']} steps" if "epoch" in info else "not started"
    stopped = " (stopped early)" if info.get("stopped_early") else ""
    lines.append(f"training    {done}{stopped}, batch size {t['batch_size']}, seed {t['seed']}")
    if "checkpoint" in info:
        lines.append(f"checkpoint  {info['checkpoint']['folder']} (epoch {info['checkpoint']['epoch']}, verified)")
    for key in ("checkpoint_error", "metrics_stale"):
        if key in info:
            lines.append(f"problem     {info[key]}")
    hist = info.get("history") or []
    if hist:
        h = hist[-1]
        va = f" acc {_acc(h.get('val_accuracy'))}" if h.get("val_accuracy") is not None else ""
        tr = f" acc {_acc(h.get('train_accuracy'))}" if h.get("train_accuracy") is not None else ""
        lines.append(f"last epoch  train loss {_loss(h['train_loss'])}{tr}  val loss {_loss(h.get('val_loss'))}{va}")
        norms = h.get("grad_norm") or {}
        lines.append("grad norms  " + "  ".join(f"{k} {v:.3g}" for k, v in norms.items()))
    met = info.get("metrics")
    if met:
        acc = f"  accuracy {_acc(met.get('test_accuracy'))}" if met.get("test_accuracy") is not None else ""
        lines.append(f"test        loss {_loss(met['test_loss'])}{acc}  ({met.get('test_examples')} examples)")
    lines.append("files       " + ", ".join(info["files"]))
    return "\n".join(lines)
