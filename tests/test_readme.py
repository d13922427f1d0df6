"""The README's Python examples run and do what the README says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def run(block: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    return out.getvalue()


def test_the_ten_line_training_loop_learns():
    (block,) = [b for b in BLOCKS if "load_dataset" in b]
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", run(block)).group(1))
    assert accuracy > 95


def test_the_custom_op_example_passes_its_checks():
    (block,) = [b for b in BLOCKS if "class Cube" in b]
    run(block)
