"""The recorded graph of a tensor as Graphviz DOT, like micrograd's ``draw_dot`` and torchviz's ``make_dot``.

Every operation the forward pass recorded is a node labelled with its name and its output's shape; the
leaves that gradients flow to (parameters, and inputs that require grad) are boxes labelled with their names
(``params`` maps names to tensors, e.g. ``dict(model.named_parameters())``); an edge goes from each input to
the operation that used it, so the forward pass reads from the leaves down to the loss, and backprop runs
the same edges upwards. Constants and data that do not require grad are left out, as in torchviz.

>>> loss = nn.CrossEntropyLoss()(model(x), y)
>>> g = to_dot(loss, params=dict(model.named_parameters()))
>>> write_graph(g, "graph.svg")      # graph.dot, and graph.svg when Graphviz's dot program is installed
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltagrad.explain.errors import ExplainError
from deltagrad.tensor import Tensor

INSTALL_HINT = ("Graphviz's dot program is not installed, so only the DOT file was written; to render it, install "
                "Graphviz (apt-get install graphviz, or brew install graphviz) and run: dot -Tsvg {dot} -o {svg}")
FORMATS = ("svg", "png", "pdf")


@dataclass
class Graph:
    """A recorded graph: its DOT text and the number of nodes (operations and leaves) and edges in it."""

    source: str
    nodes: int
    edges: int
    ops: int
    leaves: int


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(output: Tensor, params: Mapping[str, Tensor] | None = None, title: str | None = None) -> Graph:
    """The graph that recorded ``output`` (draw it before ``backward()``, which frees it), as DOT."""
    if not isinstance(output, Tensor):
        raise ExplainError(f"to_dot needs a Tensor, not {type(output).__name__}")
    names = {id(t): name for name, t in (params or {}).items()}
    ids: dict[int, str] = {}
    lines = ["digraph backprop {", '  graph [rankdir=TB, fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=11];']
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    edges: list[str] = []
    counts = {"ops": 0, "leaves": 0}

    def node_id(key: int) -> str:
        if key not in ids:
            ids[key] = f"n{len(ids)}"
        return ids[key]

    def leaf(t: Tensor) -> str:
        key = id(t)
        if key not in ids:
            name = names.get(key, "leaf")
            lines.append(f"  {node_id(key)} [shape=box, style=filled, fillcolor=lightblue, "
                         f"label={_quote(name + chr(10) + _shape(t.shape))}];")
            counts["leaves"] += 1
        return ids[key]

    if output._node is None:
        leaf(output)
    else:
        root = output._node
        stack, seen = [root], {id(root)}
        while stack:  # iterative: deep graphs do not recurse
            node = stack.pop()
            if node._freed:
                raise ExplainError("the graph was freed by backward(); draw it before calling backward(), or "
                                   "call backward(retain_graph=True)")
            style = ", style=filled, fillcolor=darkseagreen1" if node is root else ""
            lines.append(f"  {node_id(id(node))} [shape=ellipse{style}, "
                         f"label={_quote(node.name + chr(10) + _shape(node._out.shape))}];")
            counts["ops"] += 1
            for t in node._inputs:
                if not isinstance(t, Tensor) or not t.requires_grad:
                    continue
                if t._node is None:
                    src = leaf(t)
                else:
                    src = node_id(id(t._node))
                    if id(t._node) not in seen:
                        seen.add(id(t._node))
                        stack.append(t._node)
                edges.append(f"  {src} -> {node_id(id(node))};")
    lines += edges + ["}"]
    return Graph("\n".join(lines) + "\n", counts["ops"] + counts["leaves"], len(edges), counts["ops"],
                 counts["leaves"])


def dot_program() -> str | None:
    """The path of Graphviz's ``dot`` program, or None when it is not installed."""
    return shutil.which("dot")


def write_graph(graph: Graph, out: str | Path) -> tuple[Path, Path | None, str | None]:
    """Write ``graph`` to ``out``: a ``.dot`` file as it is; for ``.svg``/``.png``/``.pdf`` the ``.dot`` beside it,
    rendered with Graphviz's ``dot`` when installed. Returns ``(dot path, rendered path or None, a hint or None)``:
    the hint says how to install Graphviz when rendering was asked for and could not be done."""
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt != "dot" and fmt not in FORMATS:
        raise ExplainError(f"{out}: the graph file must end in .dot, {', '.join('.' + f for f in FORMATS)}")
    dot_path = out if fmt == "dot" else out.with_suffix(".dot")
    dot_path.write_text(graph.source, encoding="utf-8")
    if fmt == "dot":
        return dot_path, None, None
    program = dot_program()
    if program is None:
        return dot_path, None, INSTALL_HINT.format(dot=dot_path, svg=out.with_suffix(".svg"))
    done = subprocess.run([program, f"-T{fmt}", str(dot_path), "-o", str(out)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise ExplainError(f"Graphviz's dot could not render {dot_path}: {done.stderr.strip() or done.returncode}")
    return dot_path, out, None


def graph_summary(graph: Graph, dot_path: Path, rendered: Path | None) -> dict[str, Any]:
    """The ``--json`` answer of ``deltagrad graph``."""
    return {"dot": str(dot_path), "rendered": None if rendered is None else str(rendered), "nodes": graph.nodes,
            "edges": graph.edges}
