"""The notes' worked example of backprop (seeds/001, "Backpropagation example"), computed by deltagrad.

A 2-2-1 network without biases, x1 = W0 x0, x2 = tanh(x1), x3 = W1 x2, the Euclidean loss L = ½(x3 − y)²,
and one step of gradient descent with η = 0.2, from

    W0 = ((1, −3), (0.2, 1)),  W1 = (1, −1),  x0 = (1, 0.1),  y = 0.5.

``worked_example()`` runs it through the library's modules (``nn.Linear``, ``nn.Tanh``, ``nn.EuclideanLoss``,
recorded by the ``Ledger``, stepped by ``optim.SGD``) and returns every value exactly (float64); ``slips()``
compares the figures the notes print with them and finds the two places where the printed notes slip;
``worked_example_text()`` lays it all out in the notes' block notation.

>>> worked_example()["backward"]["x3"]     # dL/dx3 = x3 − y
[-0.18694483533442757]
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from deltagrad import nn, optim
from deltagrad.backend import float64
from deltagrad.explain.ledger import Ledger
from deltagrad.tensor import Tensor

W0 = [[1.0, -3.0], [0.2, 1.0]]
W1 = [[1.0, -1.0]]
X0, Y, LR = [1.0, 0.1], 0.5, 0.2

# the figures the notes print, in the notes' own layout
PRINTED: dict[str, Any] = {
    "x1": [0.7, 0.3], "x2": [0.604, 0.291], "x3": [0.313], "loss": 0.017,
    "dL/dx3": [-0.1869], "dL/dx2": [-0.1869, 0.1869], "dL/dx1": [-0.1186, 0.171],
    "dL/dW0": [[-0.1186, 0.171], [-0.01186, 0.0171]],   # printed as x0 · dL/dx1
    "dL/dW1 factor": -0.1186,                          # printed as x2 · (−0.1186)
    "dL/dW1": [[-0.113], [-0.054]],                    # printed as a column
    "W0 updated": [[1.02, -3.0], [0.17, 1.0]],
    "W1 updated": [[1.02, -0.989]],
}


def agrees(value: Any, printed: Any) -> bool:
    """``value`` equals each printed figure at the precision it is printed with (one unit in the last digit:
    the notes cut some figures off rather than round them, dL/dx1 = −0.118661… is printed −0.1186)."""
    value, printed = np.asarray(value, dtype=np.float64), np.asarray(printed, dtype=np.float64)
    if value.size != printed.size:
        return False
    decimals = [len(repr(float(p)).split(".")[1]) for p in printed.ravel()]
    tol = 10.0 ** -np.array(decimals, dtype=float) + 1e-12
    return bool(np.all(np.abs(value.ravel() - printed.ravel()) <= tol))


def network() -> nn.Sequential:
    """The notes' network with its weights: Linear(2, 2) → Tanh → Linear(2, 1), no biases, float64."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False, dtype=float64), nn.Tanh(),
                        nn.Linear(2, 1, bias=False, dtype=float64))
    net.load_state_dict({"0.weight": Tensor(np.array(W0)), "2.weight": Tensor(np.array(W1))})
    return net


def worked_example() -> dict[str, Any]:
    """``{"forward": {"x1", "x2", "x3", "loss"}, "backward": {"x3", "x2", "x1"}, "grads": {"W0", "W1"},
    "updated": {"W0", "W1"}}``: exact float64 values, weights and gradients out × in (PyTorch's layout)."""
    net = network()
    ledger = Ledger.record(net, np.array([X0]), np.array([[Y]]), nn.EuclideanLoss())
    x1, x2, x3 = (ledger[i] for i in range(3))
    grads = {"W0": x1.grads["weight"].tolist(), "W1": x3.grads["weight"].tolist()}
    opt = optim.SGD(net.parameters(), lr=LR)
    for p, g in ((net[0].weight, x1.grads["weight"]), (net[2].weight, x3.grads["weight"])):
        p.grad = Tensor(g)
    opt.step()
    return {"forward": {"x1": x1.output[0].tolist(), "x2": x2.output[0].tolist(), "x3": x3.output[0].tolist(),
                        "loss": ledger.loss},
            "backward": {"x3": x3.output_grad[0].tolist(), "x2": x2.output_grad[0].tolist(),
                         "x1": x1.output_grad[0].tolist()},
            "grads": grads,
            "updated": {"W0": net[0].weight.data.tolist(), "W1": net[2].weight.data.tolist()}}


def slips(result: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Where the figures the notes print disagree with their own formulas, found by comparing them with the
    exact values: the factor in dL/dW1 = x2 · dL/dx3, and the layout of dL/dW0 in the update. Each is
    ``{"quantity": "dL/dW1", "text": ...}``."""
    r = result or worked_example()
    found: list[dict[str, str]] = []
    x2, dx3, dx1 = np.array(r["forward"]["x2"]), r["backward"]["x3"][0], r["backward"]["x1"]
    factor, printed_w1 = PRINTED["dL/dW1 factor"], np.array(PRINTED["dL/dW1"]).ravel()
    if not agrees(dx3, factor) and agrees(x2 * dx3, printed_w1):
        which = f" (that is dL/dx1's first entry, {dx1[0]:.6g})" if agrees(dx1[0], factor) else ""
        found.append({"quantity": "dL/dW1", "text": (
            f"dL/dW1 = x2 · dL/dx3: the notes multiply x2 by {factor}{which} where dL/dx3 = {dx3:.6g} is meant; "
            f"the result they print, {_vec(printed_w1)}, is x2 · dL/dx3 (x2 · ({factor}) would be "
            f"{_vec(x2 * factor, 3)}).")})
    g0, printed_w0 = np.array(r["grads"]["W0"]), np.array(PRINTED["dL/dW0"])
    w0_as_printed = np.array(W0) - LR * printed_w0
    if agrees(g0.T, printed_w0) and not agrees(g0, printed_w0) and not agrees(w0_as_printed,
                                                                            PRINTED["W0 updated"]):
        found.append({"quantity": "dL/dW0", "text": (
            f"dL/dW0 = x0 · dL/dx1 is printed {_mat(printed_w0)}, in × out, and the update W0 + η (dL/dW0)ᵀ "
            f"then subtracts that matrix as printed, without the transpose. The updated W0 they print, "
            f"{_mat(np.array(PRINTED['W0 updated']))}, is the one of the transpose, {_mat(g0, 4)} (out × in, "
            f"like W0 and like deltagrad's W.grad); subtracting the printed matrix would give "
            f"{_mat(w0_as_printed, 4)}.")})
    return found


def _vec(v: Any, digits: int | None = None) -> str:
    """(a, b, ...) with ``digits`` significant digits, or as printed (Python's shortest form)."""
    return "(" + ", ".join(repr(float(x)) if digits is None else f"{x:.{digits}g}" for x in np.ravel(v)) + ")"


def _mat(m: np.ndarray, digits: int | None = None) -> str:
    return "(" + ", ".join(_vec(row, digits) for row in m) + ")"


# ---- the layout --------------------------------------------------------------------------------------------


def _rows(v: Any) -> list[str]:
    """A vector or matrix as the rows of a block, ( a  b ), exact figures (Python's shortest round trip)."""
    a = np.atleast_2d(np.asarray(v, dtype=np.float64))
    cells = [[repr(float(x)) for x in row] for row in a]
    width = max(len(c) for row in cells for c in row)
    return ["( " + "  ".join(c.rjust(width) for c in row) + " )" for row in cells]


def _block_diagram() -> list[str]:
    blocks = ["W0 ·", "tanh", "W1 ·", "½(x3 − y)²"]
    ups, downs = ["x1", "x2", "x3"], ["dL/dx1", "dL/dx2", "dL/dx3"]
    w = max(map(len, downs)) + 4
    top, bottom = "x0 ──▶ ", "       "
    for i, b in enumerate(blocks):
        top += f"[ {b} ]"
        bottom += f"[ {b} ]"
        if i < len(ups):
            top += " " + f"──{ups[i]}".ljust(w - 2, "─") + "▶ "
            bottom += " ◀─" + f"{downs[i]}─".ljust(w - 3, "─") + " "
    top += " ──▶ L"
    bottom += " ◀── y"
    return ["the network in the notes' block notation (forward signals go right, backward signals come back "
            "left):", "", "  " + top, "  " + bottom, ""]


def worked_example_text(result: dict[str, Any] | None = None) -> str:
    """The example laid out as in the notes: each step's formula, the exact value and the printed figure."""
    r = result or worked_example()
    f, b, g, u = r["forward"], r["backward"], r["grads"], r["updated"]
    lines = ["The worked example of the lecture notes (seeds/001), computed by deltagrad: a 2-2-1 tanh network, "
             "the Euclidean loss,", f"one step of gradient descent with η = {LR}, from W0 = ((1, −3), (0.2, 1)), "
             "W1 = (1, −1), x0 = (1, 0.1), y = 0.5.", ""] + _block_diagram()
    steps = [
        ("forward pass", [("x1 = W0 x0", f["x1"], "x1"), ("x2 = tanh(x1)", f["x2"], "x2"),
                          ("x3 = W1 x2", f["x3"], "x3"), ("L = ½(x3 − y)²", [f["loss"]], "loss")]),
        ("backward pass", [("dL/dx3 = x3 − y", b["x3"], "dL/dx3"), ("dL/dx2 = dL/dx3 · W1", b["x2"], "dL/dx2"),
                           ("dL/dx1 = dL/dx2 · (1 − tanh²(x1))", b["x1"], "dL/dx1")]),
        ("weight gradients = backward signal × forward signal (out × in, like W)",
         [("dL/dW0 = (dL/dx1)ᵀ x0ᵀ", g["W0"], "dL/dW0"), ("dL/dW1 = (dL/dx3)ᵀ x2ᵀ", g["W1"], "dL/dW1")]),
        (f"one step of gradient descent, W ← W − η dL/dW with η = {LR}",
         [("W0 ←", u["W0"], "W0 updated"), ("W1 ←", u["W1"], "W1 updated")]),
    ]
    found = slips(r)
    slipped = {s["quantity"]: i for i, s in enumerate(found, 1)}
    width = max(len(row) for _, rows in steps for _, value, _ in rows for row in _rows(value)) + 3
    printed_width = max(len(row) for _, rows in steps for _, _, key in rows for row in _rows(PRINTED[key])) + 3
    head = f"  {'':<34}{'deltagrad (exact, float64)':<{width}}notes print"
    for title, rows in steps:
        lines += [title, head]
        for formula, value, key in rows:
            exact, printed = _rows(value), _rows(PRINTED[key])
            mark = "✓" if agrees(value, PRINTED[key]) else \
                "✓ transposed" if agrees(np.asarray(value).T, PRINTED[key]) else "✗"
            if key in slipped:
                mark += f" (slip {slipped[key]})"
            for k in range(max(len(exact), len(printed))):
                left = formula if k == 0 else ""
                e = exact[k] if k < len(exact) else ""
                p = printed[k] if k < len(printed) else ""
                lines.append(f"  {left:<34}{e:<{width}}{p:<{printed_width}}{mark if k == 0 else ''}".rstrip())
        lines.append("")
    if found:
        lines.append("where the printed notes slip (found by checking the figures they print against the exact "
                     "values):")
        lines += [textwrap.fill(s["text"], 116, initial_indent=f"  {i}. ", subsequent_indent="     ")
                  for i, s in enumerate(found, 1)]
    return "\n".join(lines)
