"""``deltagrad.explain.to_dot``: the recorded graph of a loss as DOT (every operation with its output shape, every
parameter leaf by name), and writing it: rendered with Graphviz's dot when installed, else the DOT file and how
to install Graphviz."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import nn
from deltagrad.autograd.engine import topological_order
from deltagrad.explain import ExplainError, to_dot, write_graph
from deltagrad.explain import graph as graph_module


def step_loss():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    x, y = dg.randn(4, 1, 4, 4), dg.tensor(np.array([0, 1, 2, 1]))
    return model, nn.CrossEntropyLoss()(model(x), y)


def parse(source):
    nodes = dict(re.findall(r"^\s+(n\d+) \[.*label=\"(.*?)\"\];$", source, flags=re.M))
    edges = re.findall(r"^\s+(n\d+) -> (n\d+);$", source, flags=re.M)
    return nodes, edges


def test_nodes_are_the_graphs_operations_and_named_parameters():
    model, loss = step_loss()
    params = dict(model.named_parameters())
    g = to_dot(loss, params=params)
    nodes, edges = parse(g.source)
    ops = topological_order([loss.grad_fn])
    leaves = {id(t) for op in ops for t in op._inputs if isinstance(t, dg.Tensor) and t.is_leaf and t.requires_grad}
    assert g.ops == len(ops) and g.leaves == len(leaves) == len(params)
    assert g.nodes == len(nodes) == len(ops) + len(leaves)
    assert g.edges == len(edges) == sum(1 for op in ops for t in op._inputs
                                        if isinstance(t, dg.Tensor) and t.requires_grad)
    labels = set(nodes.values())
    for name, p in params.items():
        assert f"{name}\\n({', '.join(map(str, p.shape))}{',' if p.ndim == 1 else ''})" in labels
    assert {"Conv2d\\n(4, 2, 4, 4)", "ReLU\\n(4, 2, 4, 4)", "Linear\\n(4, 3)", "CrossEntropy\\n()"} <= labels
    assert all(a in nodes and b in nodes for a, b in edges)
    assert g.source.startswith("digraph backprop {") and g.source.rstrip().endswith("}")


def test_an_input_used_twice_has_two_edges_and_unnamed_leaves_say_so():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    g = to_dot((x * x).sum())
    nodes, edges = parse(g.source)
    assert g.nodes == 3 and len(edges) == 3
    assert "leaf\\n(2,)" in nodes.values()
    assert to_dot(x, {"x": x}).nodes == 1  # a leaf alone


def test_a_freed_graph_and_bad_arguments_are_named(tmp_path):
    _, loss = step_loss()
    loss.backward()
    with pytest.raises(ExplainError, match="freed by backward"):
        to_dot(loss)
    with pytest.raises(ExplainError, match="needs a Tensor"):
        to_dot(3.0)
    with pytest.raises(ExplainError, match="must end in .dot, .svg, .png, .pdf"):
        write_graph(to_dot(dg.tensor([1.0], requires_grad=True)), tmp_path / "g.jpg")


def test_without_graphviz_the_dot_file_is_written_with_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    _, loss = step_loss()
    g = to_dot(loss)
    dot, rendered, hint = write_graph(g, tmp_path / "step.svg")
    assert dot == tmp_path / "step.dot" and dot.read_text() == g.source and rendered is None
    assert "apt-get install graphviz" in hint and "brew install graphviz" in hint
    assert not (tmp_path / "step.svg").exists()
    assert write_graph(g, tmp_path / "only.dot") == (tmp_path / "only.dot", None, None)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_rendered_with_graphviz(fmt, magic, tmp_path):
    model, loss = step_loss()
    dot, rendered, hint = write_graph(to_dot(loss, dict(model.named_parameters())), tmp_path / f"step.{fmt}")
    assert rendered == tmp_path / f"step.{fmt}" and hint is None
    assert rendered.read_bytes().startswith(magic)
    if fmt == "svg":
        assert "3.weight" in rendered.read_text()
