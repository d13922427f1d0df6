"""Seeing backprop: the ledger of forward and backward signals, the notes' worked example, gradient-flow studies,
unit visualization (saliency, activation maximization, deep dream) and graph export.

Built on module hooks and ``autograd.grad``; importable without matplotlib (plots import it lazily). The core never
imports this package, and it never imports ``deltagrad.train`` or ``deltagrad.cli``.
"""

from __future__ import annotations

from deltagrad.explain.errors import ExplainError
