"""The layering of DESIGN.md: imports point down (backend ← autograd/tensor ← ops ← nn, optim ← data ← train
← cli), the core never imports the outer rooms, and nothing in the library imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "deltagrad"

# room -> rooms it must never import
FORBIDDEN = {
    "backend": {"tensor", "autograd", "ops", "nn", "optim", "data", "train", "cli"},
    "tensor": {"ops", "nn", "optim", "data", "train", "cli"},
    "autograd": {"ops", "nn", "optim", "data", "train", "cli"},
    "ops": {"nn", "optim", "data", "train", "cli"},
    "testing": {"nn", "optim", "data", "train", "cli"},
    "nn": {"optim", "data", "train", "cli"},
    "optim": {"nn", "data", "train", "cli"},
    "data": {"nn", "optim", "train", "cli"},
    "train": {"cli"},
    "explain": {"train", "cli"},
}
# the outer rooms: the core imports none of them
OUTER = {"explain", "distributed", "onnx"}
for room in ("backend", "tensor", "autograd", "ops", "testing", "nn", "optim", "data", "io", "func", "creation",
             "random"):
    FORBIDDEN[room] = FORBIDDEN.get(room, set()) | OUTER


def room_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_imports_point_down():
    problems = []
    for path in SRC.rglob("*.py"):
        room = room_of(path)
        for mod in imported_modules(path):
            parts = mod.split(".")
            if parts[0] == "torch":
                problems.append(f"{path.relative_to(SRC)} imports torch")
            if parts[0] == "deltagrad" and len(parts) > 1 and parts[1] in FORBIDDEN.get(room, set()):
                problems.append(f"{path.relative_to(SRC)} ({room}) imports {mod}")
    assert not problems, "\n".join(problems)
