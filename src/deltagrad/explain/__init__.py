"""Seeing backprop: the ledger of forward and backward signals, the notes' worked example, gradient-flow studies,
unit visualization (saliency, activation maximization, deep dream) and graph export.

Built on module hooks and ``autograd.grad``; importable without matplotlib (plots import it lazily). The core never
imports this package, and it never imports ``deltagrad.train`` or ``deltagrad.cli``.
"""

from __future__ import annotations

from deltagrad.explain.errors import ExplainError
from deltagrad.explain.graph import to_dot, write_graph
from deltagrad.explain.ledger import LayerRecord, Ledger
from deltagrad.explain.worked_example import worked_example, worked_example_text
