"""Training curves as a PNG: loss, accuracy and per-layer gradient norms per epoch (matplotlib, imported lazily).

``curves_png(history, title)`` draws in this process. Importing matplotlib takes about half a second, longer
than training the default MLP, so ``CurvesPainter`` starts a second Python process when training starts; it
imports matplotlib (and draws a practice figure) on the other core while this one trains, then turns the
history into PNG bytes::

    painter = CurvesPainter()                     # before training: the drawing process starts
    ...                                           # train
    png = painter.png(history, "mlp on digits")   # the PNG bytes, drawn there (or here if that failed)

This file is also the drawing process's program: run as a script it reads ``{"history": [...], "title": ...}``
(JSON) on standard input and writes the PNG to standard output. It imports nothing from deltagrad, so that
process does not load the library.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import warnings
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Fixed margins in inches: constrained layout measures every text first, which costs as much as a second draw.
PANEL_W, PANEL_H = 4.4, 3.6
LEFT, RIGHT, GAP, BOTTOM = 0.7, 0.12, 0.7, 0.48  # LEFT and GAP hold tick labels such as "0.0014"
TOP, TOP_SUPTITLE = 0.32, 0.58  # an axes title; and the figure title above it

# The drawing process runs this file by path, without the script's folder on sys.path (it holds run.py,
# config.py, ...: names that would shadow top-level modules), as ``python -m`` would, minus the package import.
_BOOTSTRAP = "import runpy, sys; del sys.path[0]; runpy.run_path(sys.argv[1], run_name='__main__')"


def _num(v: Any) -> float:
    """A plottable float: numbers as they are, anything else (None, "nan" from a resumed run's JSON) as NaN."""
    return float(v) if isinstance(v, (int, float)) else math.nan


def curves_png(history: list[dict[str, Any]], title: str = "") -> bytes:
    """The PNG bytes of a figure with one panel each for loss, accuracy (classification only) and the
    per-layer gradient norms (log scale: vanishing or exploding gradients show as lines apart).

    ``history`` is the list of per-epoch records of ``Trainer.fit`` (keys ``epoch``, ``train_loss``,
    ``val_loss``, ``train_accuracy``, ``val_accuracy``, ``grad_norm``: layer name -> RMS norm).

    >>> curves_png([{"epoch": 1, "train_loss": 0.7, "val_loss": 0.3, "grad_norm": {"0.Linear": 0.5}}])[:4]
    b'\\x89PNG'
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    has_acc = any(h.get("train_accuracy") is not None for h in history)
    panels = 3 if has_acc else 2
    width, top = PANEL_W * panels, TOP_SUPTITLE if title else TOP
    fig = Figure(figsize=(width, PANEL_H), dpi=100)
    axes_w = (width - LEFT - RIGHT - GAP * (panels - 1)) / panels
    fig.subplots_adjust(left=LEFT / width, right=1 - RIGHT / width, bottom=BOTTOM / PANEL_H,
                        top=1 - top / PANEL_H, wspace=GAP / axes_w)
    axes = fig.subplots(1, panels)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs

    def series(key: str, scale: float = 1.0) -> list[float]:
        return [scale * _num(h.get(key)) for h in history]

    ax = axes[0]
    ax.plot(epochs, series("train_loss"), marker=".", label="train")
    ax.plot(epochs, series("val_loss"), marker=".", label="validation")
    ax.set(title="loss", xlabel="epoch")
    ax.legend()
    if has_acc:
        ax = axes[1]
        ax.plot(epochs, series("train_accuracy", 100), marker=".", label="train")
        ax.plot(epochs, series("val_accuracy", 100), marker=".", label="validation")
        ax.set(title="accuracy (%)", xlabel="epoch")
        ax.legend()
    ax = axes[-1]
    layers = list(history[-1].get("grad_norm") or {}) if history else []
    for name in layers:
        ax.plot(epochs, [_num((h.get("grad_norm") or {}).get(name)) for h in history], marker=".", label=name)
    ax.set(title="gradient norm per layer (RMS over steps)", xlabel="epoch")
    if layers:
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class CurvesPainter:
    """Draws ``curves_png`` in a separate Python process, started by the constructor, so that importing
    matplotlib overlaps training; ``png()`` sends the history and returns the PNG bytes.

    ``separate=None`` starts the process for the first painter of a Python process only, and only while
    matplotlib is not imported here: a later run in the same process (a notebook, the test suite) draws here,
    where matplotlib is then imported once and each figure costs only its drawing. ``True`` always starts one,
    ``False`` never. If the process cannot start, ``png()`` draws here; if it fails or gives no answer within
    ``timeout`` seconds, ``png()`` warns (RuntimeWarning, with the process's last error line) and draws here, so
    an error is never lost. ``argv`` replaces the process's command (tests).

    >>> painter = CurvesPainter()
    >>> painter.png([{"epoch": 1, "train_loss": 0.7, "val_loss": 0.3}], "a title")[:4]
    b'\\x89PNG'
    """

    _started_one = False  # in this Python process

    def __init__(self, separate: bool | None = None, *, argv: list[str] | None = None, timeout: float = 60.0):
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        if separate is None:
            separate = not CurvesPainter._started_one and "matplotlib" not in sys.modules
        if separate:
            CurvesPainter._started_one = True
            try:
                self._proc = subprocess.Popen(argv or [sys.executable, "-c", _BOOTSTRAP, os.path.abspath(__file__)],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except (OSError, ValueError):  # no usable sys.executable (an embedded interpreter): draw here
                self._proc = None

    @property
    def separate(self) -> bool:
        """Whether a drawing process is running (started, and not yet asked)."""
        return self._proc is not None

    def png(self, history: list[dict[str, Any]], title: str = "") -> bytes:
        """The PNG bytes of ``curves_png(history, title)``; the drawing process, if any, ends here."""
        proc, self._proc = self._proc, None
        if proc is None:
            return curves_png(history, title)
        request = json.dumps({"history": history, "title": title}, default=float).encode()
        try:
            out, err = proc.communicate(request, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            problem = f"no answer within {self.timeout:g} s"
        else:
            if proc.returncode == 0 and out.startswith(PNG_SIGNATURE):
                return out
            lines = err.decode("utf-8", "replace").strip().splitlines()
            problem = lines[-1] if lines else (f"exit status {proc.returncode}" if proc.returncode
                                               else "its output is not a PNG")
        warnings.warn(f"the process drawing curves.png failed ({problem}); drawing it in this process instead",
                      RuntimeWarning, stacklevel=2)
        return curves_png(history, title)

    def close(self) -> None:
        """End the drawing process unasked (training failed)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.communicate()

    def __del__(self) -> None:
        self.close()


# a practice figure for the drawing process while it waits: loads the fonts and the log axis's mathtext labels
_PRACTICE = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "train_accuracy": 0.5, "val_accuracy": 0.5,
              "grad_norm": {"0.Linear": 10.0 ** -e}} for e in (1, 2, 3)]


def _serve() -> None:
    """The drawing process: history JSON on stdin, PNG bytes on stdout."""
    import matplotlib.figure  # noqa: F401  (the slow part, while the parent trains)

    if os.name == "posix":
        import select

        if not select.select([sys.stdin], [], [], 0)[0]:  # the parent is still training: practise meanwhile
            curves_png(_PRACTICE, "practice")
    request = sys.stdin.buffer.read()
    if not request:  # the parent ended without asking
        return
    req = json.loads(request)
    sys.stdout.buffer.write(curves_png(req["history"], req["title"]))


if __name__ == "__main__":
    _serve()
