"""curves.png: a valid, readable PNG, drawn in this process or in the separate drawing process (the same bytes),
and every way that process can fail ends in a PNG drawn here, with the failure reported."""

from __future__ import annotations

import io
import json
import math
import os
import struct
import subprocess
import sys
import zlib
from functools import lru_cache

import pytest

from deltagrad.train import plot

HISTORY = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "train_accuracy": 0.5 + e / 10,
            "val_accuracy": 0.45 + e / 10, "grad_norm": {"0.Linear": 0.5 / e, "2.Linear": 10.0 ** -e}}
           for e in range(1, 5)]


@lru_cache
def drawn_here(title: str = "") -> bytes:
    return plot.curves_png(HISTORY, title)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, payload) chunks of a PNG, each CRC checked."""
    assert data[:8] == plot.PNG_SIGNATURE
    chunks, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        kind, payload = data[i + 4:i + 8], data[i + 8:i + 8 + n]
        (crc,) = struct.unpack(">I", data[i + 8 + n:i + 12 + n])
        assert zlib.crc32(kind + payload) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, payload))
        i += 12 + n
    return chunks


def pixels(data: bytes):
    from PIL import Image  # matplotlib's own PNG writer

    return Image.open(io.BytesIO(data)).convert("RGB")


def test_the_png_is_valid_and_of_the_figure_size():
    data = drawn_here("mlp on digits")
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert (width, height) == (round(100 * plot.PANEL_W * 3), round(100 * plot.PANEL_H))  # three panels
    assert 20_000 < len(data) < 400_000
    no_accuracy = [{k: v for k, v in h.items() if "accuracy" not in k} for h in HISTORY]
    assert struct.unpack(">II", png_chunks(plot.curves_png(no_accuracy))[0][1][:8])[0] == round(200 * plot.PANEL_W)


def test_the_curves_are_drawn_inside_the_figure():
    # tick labels as wide as the margins must hold: 0.0012 on the loss axis, 10^-5 on the log axis
    long_labels = [dict(h, train_loss=0.0012 / h["epoch"], val_loss=0.0015 / h["epoch"],
                        grad_norm={"0.Linear": 10.0 ** -h["epoch"], "a.much.longer.layer.name": 1e-5})
                   for h in HISTORY]
    img = pixels(plot.curves_png(long_labels, "mlp on a-csv-file-with-a-long-name.csv"))
    colors = img.getcolors(maxcolors=1 << 20)
    blue, orange = (31, 119, 180), (255, 127, 14)  # matplotlib's first two line colors
    assert {blue, orange} <= {c for _, c in colors}
    w, h = img.size
    # no text or line touches the border: the fixed margins hold the tick labels and titles
    border = [img.getpixel((x, y)) for x in range(w) for y in (0, h - 1)] + \
             [img.getpixel((x, y)) for y in range(h) for x in (0, w - 1)]
    assert set(border) == {(255, 255, 255)}


def test_missing_and_non_finite_values_are_gaps():
    history = [dict(h) for h in HISTORY]
    history[1].update(val_loss="nan", train_accuracy=None, grad_norm={"0.Linear": "inf", "2.Linear": math.nan})
    history[2]["grad_norm"] = {}
    assert png_chunks(plot.curves_png(history))[-1][0] == b"IEND"


def test_the_drawing_process_draws_the_same_png():
    painter = plot.CurvesPainter(separate=True)
    assert painter.separate
    assert painter.png(HISTORY, "mlp on digits") == drawn_here("mlp on digits")
    assert not painter.separate  # asked once; it has ended


def test_the_parent_never_imports_matplotlib_when_the_process_draws(tmp_path):
    code = ("import sys; from deltagrad.train.plot import CurvesPainter; p = CurvesPainter(); started = p.separate; "
            f"png = p.png({HISTORY!r}); print(started, 'matplotlib' in sys.modules, png[:4] == b'\\x89PNG', "
            "CurvesPainter().separate)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["True", "False", "True", "False"]  # one process per Python process
    assert out.stderr == ""


def test_no_process_once_matplotlib_is_imported_here(monkeypatch):
    import matplotlib  # noqa: F401

    monkeypatch.setattr(plot.CurvesPainter, "_started_one", False)
    assert not plot.CurvesPainter().separate
    assert not plot.CurvesPainter(separate=False).separate


def test_a_process_that_cannot_start_means_drawing_here(tmp_path, recwarn):
    painter = plot.CurvesPainter(separate=True, argv=[str(tmp_path / "no-such-python")])
    assert not painter.separate
    assert painter.png(HISTORY) == drawn_here()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("code, problem", [
    ("import sys; sys.exit('ModuleNotFoundError: No module named matplotlib')", "No module named matplotlib"),
    ("import sys; sys.exit(3)", "exit status 3"),
    ("import sys; sys.stdin.read(); print('not a picture')", "its output is not a PNG"),
])
def test_a_failing_process_is_reported_and_the_png_drawn_here(code, problem):
    painter = plot.CurvesPainter(separate=True, argv=[sys.executable, "-c", code])
    with pytest.warns(RuntimeWarning, match=f"the process drawing curves.png failed .*{problem}"):
        data = painter.png(HISTORY, "t")
    assert data == drawn_here("t")


def test_a_silent_process_is_killed_after_the_timeout():
    painter = plot.CurvesPainter(separate=True, argv=[sys.executable, "-c", "import time; time.sleep(60)"],
                                 timeout=0.3)
    with pytest.warns(RuntimeWarning, match=r"no answer within 0.3 s"):
        assert painter.png(HISTORY)[:8] == plot.PNG_SIGNATURE


def test_an_error_in_the_drawing_is_not_lost():
    """Bad history: the process fails (reported), and drawing here raises the same error, with its traceback."""
    painter = plot.CurvesPainter(separate=True)
    with pytest.warns(RuntimeWarning, match="KeyError: 'epoch'"), pytest.raises(KeyError, match="epoch"):
        painter.png([{"train_loss": 1.0}])


def test_close_ends_the_process_and_later_drawing_is_here(recwarn):
    painter = plot.CurvesPainter(separate=True, argv=[sys.executable, "-c", "import time; time.sleep(60)"])
    proc = painter._proc
    painter.close()
    assert proc.returncode is not None and not painter.separate
    assert painter.png(HISTORY)[:8] == plot.PNG_SIGNATURE
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def run_child(stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", plot._BOOTSTRAP, plot.__file__], input=stdin, capture_output=True,
                          check=False)


def test_the_child_program_ends_quietly_when_the_parent_never_asks():
    done = run_child(b"")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


@pytest.mark.skipif(os.name != "posix", reason="the practice figure waits on select(), POSIX only")
@pytest.mark.parametrize("parent_still_training", [True, False])
def test_the_child_practises_only_while_the_parent_trains(monkeypatch, parent_still_training):
    """The child's loop in this process: stdin a pipe, stdout a buffer; the request arrives during the practice
    figure (the parent was still training) or was there before (the parent was done: no practice)."""
    read_end, write_end = os.pipe()
    request = json.dumps({"history": HISTORY, "title": "t"}).encode()
    drawn, real = [], plot.curves_png

    def spy(history, title=""):
        drawn.append(title)
        if title == "practice":  # the parent finishes training now
            os.write(write_end, request)
            os.close(write_end)
        return real(history, title)

    if not parent_still_training:
        os.write(write_end, request)
        os.close(write_end)
    out = io.BytesIO()
    monkeypatch.setattr(plot, "curves_png", spy)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(read_end, "rb")))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    plot._serve()
    sys.stdout.flush()
    assert drawn == (["practice", "t"] if parent_still_training else ["t"])
    assert out.getvalue() == drawn_here("t")
