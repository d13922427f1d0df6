"""``deltagrad explain`` and ``deltagrad graph``: parsing and wiring only (the work is in ``deltagrad.explain``)."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

import numpy as np

from deltagrad.explain import ExplainError
from deltagrad.explain.graph import graph_summary, to_dot, write_graph
from deltagrad.explain.ledger import Ledger
from deltagrad.explain.ledger_report import ledger_text, summarize
from deltagrad.explain.worked_example import worked_example, worked_example_text
from deltagrad.tensor import Tensor
from deltagrad.train.api import open_run

EXPLAIN_EXAMPLES = """\
examples:
  deltagrad explain                       # the notes' worked example, exact values beside the printed ones
  deltagrad explain --json
  deltagrad explain runs/mine             # the ledger of a run's model on test example 0
  deltagrad explain runs/mine --example 7 --json
  deltagrad explain runs/mine --batch 32
"""

GRAPH_EXAMPLES = """\
examples:
  deltagrad graph runs/mine                       # graph.dot, rendered to graph.svg if Graphviz is installed
  deltagrad graph runs/mine --out step.png --json
  deltagrad graph runs/mine --out step.dot        # the DOT text only
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


def add_commands(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """Add the ``explain`` and ``graph`` subcommands to ``sub`` (the main parser's subparsers)."""
    e = sub.add_parser("explain", help="backprop laid out: the notes' worked example, or a run's ledger",
                       formatter_class=fmt, epilog=EXPLAIN_EXAMPLES, description=_wrap(
                           "Without RUN_DIR: the lecture notes' worked example (a 2-2-1 tanh network, one step of "
                           "gradient descent), computed exactly and set beside the figures the notes print. With "
                           "RUN_DIR: the ledger of the run's model (in float64, evaluation mode) on test examples: "
                           "per layer the forward signal x(l) and the backward signal dL/dx(l), per parameter its "
                           "gradient norm, its update-to-weight ratio lr·‖∇W‖/‖W‖, a finite-difference check and "
                           "dL/dW against backward signal × forward signal."))
    e.add_argument("run", metavar="RUN_DIR", nargs="?", help="a run folder (default: the notes' worked example)")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--example", type=int, metavar="N", help="the test example to explain (default 0)")
    which.add_argument("--batch", type=int, metavar="K", help="explain the first K test examples together")
    e.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    e.set_defaults(func=cmd_explain)

    g = sub.add_parser("graph", help="the recorded graph of one training step, as Graphviz DOT",
                       formatter_class=fmt, epilog=GRAPH_EXAMPLES, description=_wrap(
                           "Draw the graph that autograd records for one training step of a run's model on a test "
                           "batch (the run's batch size): each operation with its output shape, each parameter "
                           "with its name. Written as DOT, and rendered to SVG/PNG/PDF when Graphviz's dot program "
                           "is installed."))
    g.add_argument("run", metavar="RUN_DIR")
    g.add_argument("--out", metavar="FILE", default="graph.svg",
                   help="FILE.dot (the DOT text only), or FILE.svg, FILE.png or FILE.pdf (the DOT beside it, "
                        "rendered with Graphviz's dot if installed); default graph.svg")
    g.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    g.set_defaults(func=cmd_graph)


def _test_examples(run: str, example: int | None, batch: int | None) -> tuple[Any, np.ndarray, np.ndarray, str]:
    trainer, data = open_run(run)
    x, y = data.test.arrays
    n = len(x)
    if n == 0:
        raise ExplainError(f"{run}: the run's data set has no test examples to explain")
    if batch is not None:
        if not 1 <= batch <= n:
            raise ExplainError(f"--batch must be between 1 and the {n} test examples, got {batch}")
        sel, what = slice(0, batch), f"test examples 0..{batch - 1}"
    else:
        k = 0 if example is None else example
        if not 0 <= k < n:
            raise ExplainError(f"--example must be between 0 and {n - 1} (the run has {n} test examples), got {k}")
        sel, what = slice(k, k + 1), f"test example {k}"
    xs = np.asarray(x[sel], dtype=np.float64)
    ys = y[sel] if y.dtype.kind in "iu" else np.asarray(y[sel], dtype=np.float64)
    return trainer, xs, ys, what


def cmd_explain(args: argparse.Namespace) -> int:
    if args.run is None:
        if args.example is not None or args.batch is not None:
            raise ExplainError("--example and --batch choose test examples of a run: give RUN_DIR too")
        result = worked_example()
        print(json.dumps(result) if args.json else worked_example_text(result))
        return 0
    trainer, x, y, what = _test_examples(args.run, args.example, args.batch)
    model = trainer.model.double().eval()  # float64: finite differences are meaningful; eval: as it predicts
    ledger = Ledger.record(model, x, y, trainer.loss_fn)
    summary = summarize(ledger, lr=trainer.cfg["optimizer"]["lr"])
    if args.json:
        print(json.dumps(summary))
        return 0
    head = f"ledger of {args.run} on {what}"
    if trainer.classification:
        predicted = ledger[len(ledger) - 1].output.argmax(axis=-1)
        head += f" (target {_few(y)}, predicted {_few(predicted)})"
    print(head)
    print(ledger_text(ledger, summary, ledger.check_products()))
    return 0


def _few(a: np.ndarray, k: int = 8) -> str:
    items = [str(int(v)) for v in np.ravel(a)[:k]]
    return ", ".join(items) + (", ..." if np.size(a) > k else "")


def cmd_graph(args: argparse.Namespace) -> int:
    trainer, data = open_run(args.run)
    x, y = data.test.arrays
    if len(x) == 0:
        raise ExplainError(f"{args.run}: the run's data set has no test examples to run a step on")
    n = min(trainer.cfg["train"]["batch_size"], len(x))
    model = trainer.model.train()
    loss = trainer.loss_fn(model(Tensor(x[:n])), Tensor(y[:n]))
    graph = to_dot(loss, params=dict(model.named_parameters()),
                   title=f"one training step of {args.run} on {n} test examples (loss {loss.item():.4g})")
    dot_path, rendered, hint = write_graph(graph, args.out)
    print(f"wrote {dot_path}: {graph.ops} operations, {graph.leaves} parameters, {graph.edges} edges" +
          (f"; rendered {rendered}" if rendered else ""))
    if hint:
        print(hint)
    if args.json:
        print(json.dumps(graph_summary(graph, dot_path, rendered)))
    return 0
