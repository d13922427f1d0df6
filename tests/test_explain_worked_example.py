"""``deltagrad.explain.worked_example``: the notes' 2-2-1 tanh example computed by the library, against the exact
values (NumPy, written out from the notes' formulas) and the figures the notes print, and the two slips of
the printed notes found."""

from __future__ import annotations

import numpy as np
import pytest

from deltagrad.explain.worked_example import PRINTED, agrees, slips, worked_example, worked_example_text

W0, W1, X0, Y, ETA = np.array([[1.0, -3.0], [0.2, 1.0]]), np.array([[1.0, -1.0]]), np.array([1.0, 0.1]), 0.5, 0.2


def exact():
    x1 = W0 @ X0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    d3 = x3 - Y                        # dL/dx3
    d2 = d3 @ W1                       # dL/dx2 = dL/dx3 · W1
    d1 = d2 * (1 - np.tanh(x1) ** 2)   # dL/dx1
    g0, g1 = np.outer(d1, X0), np.outer(d3, x2)   # backward × forward, out × in
    return dict(x1=x1, x2=x2, x3=x3, loss=0.5 * float(d3 @ d3), d3=d3, d2=d2, d1=d1, g0=g0, g1=g1,
                w0=W0 - ETA * g0, w1=W1 - ETA * g1)


def test_values_are_exact():
    r, e = worked_example(), exact()
    assert set(r) == {"forward", "backward", "grads", "updated"}
    assert set(r["forward"]) == {"x1", "x2", "x3", "loss"} and set(r["backward"]) == {"x3", "x2", "x1"}
    assert set(r["grads"]) == set(r["updated"]) == {"W0", "W1"}
    for got, want in [(r["forward"]["x1"], e["x1"]), (r["forward"]["x2"], e["x2"]), (r["forward"]["x3"], e["x3"]),
                      (r["backward"]["x3"], e["d3"]), (r["backward"]["x2"], e["d2"]), (r["backward"]["x1"], e["d1"]),
                      (r["grads"]["W0"], e["g0"]), (r["grads"]["W1"], e["g1"]),
                      (r["updated"]["W0"], e["w0"]), (r["updated"]["W1"], e["w1"])]:
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert r["forward"]["loss"] == pytest.approx(e["loss"], rel=1e-14)
    assert isinstance(r["forward"]["loss"], float)


def test_every_printed_figure_but_the_slips_agrees():
    r = worked_example()
    pairs = {"x1": r["forward"]["x1"], "x2": r["forward"]["x2"], "x3": r["forward"]["x3"],
             "loss": r["forward"]["loss"], "dL/dx3": r["backward"]["x3"], "dL/dx2": r["backward"]["x2"],
             "dL/dx1": r["backward"]["x1"], "dL/dW1": r["grads"]["W1"], "W0 updated": r["updated"]["W0"],
             "W1 updated": r["updated"]["W1"]}
    for key, value in pairs.items():
        assert agrees(value, PRINTED[key]), key
    assert not agrees(r["grads"]["W0"], PRINTED["dL/dW0"])          # printed transposed
    assert agrees(np.transpose(r["grads"]["W0"]), PRINTED["dL/dW0"])
    assert not agrees(r["backward"]["x3"], PRINTED["dL/dW1 factor"])  # the wrong factor
    assert not agrees(0.3141, 0.313) and agrees(0.3139, 0.313) and not agrees([1, 2], [1])


def test_the_two_slips_are_found():
    found = slips()
    assert [s["quantity"] for s in found] == ["dL/dW1", "dL/dW0"]
    assert "-0.1186" in found[0]["text"] and "dL/dx3 = -0.186945 is meant" in found[0]["text"]
    assert "without the transpose" in found[1]["text"] and "((1.024, -3.034), (0.2024, 0.9966))" in found[1]["text"]
    # with figures that had no slip, none is reported
    r = worked_example()
    fixed = dict(PRINTED)
    try:
        PRINTED["dL/dW1 factor"] = -0.1869
        PRINTED["dL/dW0"] = [[-0.1186, -0.01186], [0.171, 0.0171]]
        assert slips(r) == []
    finally:
        PRINTED.clear()
        PRINTED.update(fixed)


def test_text_sets_each_exact_value_beside_the_printed_one():
    text = worked_example_text()
    for figure in ("0.604", "-0.1869", "-0.01186", "-0.989", "1.02"):
        assert figure in text
    r = worked_example()
    assert repr(r["forward"]["x2"][0]) in text and repr(r["updated"]["W1"][0][1]) in text
    assert "[ tanh ]" in text and "◀─dL/dx2─" in text
    assert "✓ transposed (slip 2)" in text and "✓ (slip 1)" in text and "✗" not in text
    assert "1. dL/dW1 = x2 · dL/dx3" in text and "2. dL/dW0 = x0 · dL/dx1" in text
