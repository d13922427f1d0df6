"""Every registered op, gradchecked in float64 (and to second order where defined), by walking the op table.

A new op is covered by being registered with ``examples``; an op without examples fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from conftest import example_inputs
from deltagrad.autograd import OPS
from deltagrad.testing import gradcheck, gradgradcheck

OP_NAMES = sorted(OPS)


def op_cases(name: str):
    op = OPS[name]
    assert op.examples is not None, f"op {name!r} has no examples: add them beside its definition"
    return op, op.examples(np.random.default_rng(sum(map(ord, name))))


def test_table_is_populated():
    for name in ["add", "mul", "exp", "tanh", "sum", "reshape", "sum_to", "broadcast_to"]:
        assert name in OPS


def differentiable_cases(name: str):
    """(op function with the case's keywords bound, input tensors) for each example with an input to check."""
    op, cases = op_cases(name)
    for args, kwargs in cases:
        inputs = example_inputs(args)
        if any(isinstance(a, dg.Tensor) and a.requires_grad for a in inputs):
            yield (lambda *xs, kw=kwargs: op.apply(*xs, **kw)), inputs


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].differentiable])
def test_gradcheck(name):
    for fn, inputs in differentiable_cases(name):
        assert gradcheck(fn, inputs)


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].differentiable and OPS[n].differentiable_twice])
def test_gradgradcheck(name):
    for fn, inputs in differentiable_cases(name):
        assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].keeps_dtype])
def test_float32_stays_float32(name):
    op, cases = op_cases(name)
    for args, kwargs in cases:
        args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a
                       for a in args)
        inputs = example_inputs(args32)
        out = op.apply(*inputs, **kwargs)
        if out.dtype.kind != "f":
            continue
        assert out.dtype == np.float32, f"{name} turned float32 into {out.dtype}"
        if out.requires_grad:
            out.backward(dg.Tensor(np.ones(out.shape, np.float32)))
            for x in inputs:
                if isinstance(x, dg.Tensor) and x.requires_grad:
                    assert x.grad is not None and x.grad.dtype == np.float32, name


@pytest.mark.parametrize("name", [n for n in OP_NAMES if not OPS[n].differentiable])
def test_ops_without_derivative_never_require_grad(name):
    op, cases = op_cases(name)
    for args, kwargs in cases:
        out = op.apply(*example_inputs(args), **kwargs)
        assert not out.requires_grad and out.grad_fn is None and out.dtype.kind in "bi"
