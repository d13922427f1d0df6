"""Every registered op, gradchecked in float64 (and to second order where defined), by walking the op table.

A new op is covered by being registered with ``examples``; an op without examples fails here. Every op with
parameters gives the same forward values and gradients whether they are passed by position or by keyword.
"""

from __future__ import annotations

import inspect

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


# ---- parameters by position or by keyword: never taken for inputs -------------------------------------------------


def signature_names(op) -> tuple[list[str], str | None]:
    """forward's argument names after ctx (positional-or-keyword ones), and the name of its *args if any."""
    names, star = [], None
    for p in list(inspect.signature(op.forward).parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            star = p.name
            break
        if p.kind is p.POSITIONAL_OR_KEYWORD:
            names.append(p.name)
    return names, star


@pytest.mark.parametrize("name", OP_NAMES)
def test_every_op_names_its_inputs(name):
    """``inputs`` is the start of forward's signature (or None for an op whose inputs are its *args)."""
    op = OPS[name]
    names, star = signature_names(op)
    if op.inputs is None:
        assert not names and star is not None, f"{name}: declare the names of its inputs (Function.inputs)"
    else:
        assert tuple(names[:len(op.inputs)]) == op.inputs, f"{name}: inputs {op.inputs} vs forward {names}"


def both_forms(name: str):
    """For each example with parameters: (inputs, parameters by position, parameters by keyword)."""
    op, cases = op_cases(name)
    names, star = signature_names(op)
    n = len(op.inputs)
    defaults = {p.name: p.default for p in inspect.signature(op.forward).parameters.values()}
    for args, kwargs in cases:
        inputs = example_inputs(args[:n])
        given = dict(zip(names[n:], args[n:]))        # parameters the example passes by position
        extra = args[n + len(names[n:]):] if star else ()  # *shape, *dims: by position only
        inputs += [defaults[p] for p in op.inputs[len(inputs):]]  # optional inputs left out: their defaults
        for k, input_name in enumerate(op.inputs):    # an input passed by name (a class weight) goes to its place
            if input_name in kwargs:
                inputs[k] = kwargs[input_name]
        given.update({k: v for k, v in kwargs.items() if k not in op.inputs})
        if not given:
            continue
        last = max(names.index(k) for k in given)
        positional = [given.get(p, defaults[p]) for p in names[n:last + 1]]
        yield inputs, positional + list(extra), (given, extra)


def run_form(op, inputs, positional=(), keywords=None):
    xs = [x.detach().requires_grad_(x.requires_grad) if isinstance(x, dg.Tensor) else x for x in inputs]
    out = op.apply(*xs, *positional) if keywords is None else op.apply(*xs, **keywords)
    return xs, out


OPS_WITH_PARAMETERS = [n for n in OP_NAMES if OPS[n].inputs is not None and any(True for _ in both_forms(n))]


@pytest.mark.parametrize("name", OPS_WITH_PARAMETERS)
def test_parameters_by_position_or_by_keyword(name):
    op = OPS[name]
    for inputs, positional, (keywords, extra) in both_forms(name):
        xs, out = run_form(op, inputs, positional)
        if extra:  # an op with *args takes its other parameters by keyword only after them
            continue
        ys, ref = run_form(op, inputs, keywords=keywords)
        np.testing.assert_array_equal(out.data, ref.data, err_msg=f"{name}: forward by position vs by keyword")
        if not out.requires_grad:
            continue
        v = np.random.default_rng(0).standard_normal(out.shape)
        out.backward(dg.Tensor(v))
        ref.backward(dg.Tensor(v))
        for x, y in zip(xs, ys):
            if isinstance(x, dg.Tensor) and x.requires_grad:
                np.testing.assert_array_equal(x.grad.data, y.grad.data, err_msg=f"{name}: gradient")


@pytest.mark.parametrize("name", [n for n in OPS_WITH_PARAMETERS if OPS[n].differentiable])
def test_gradcheck_with_parameters_by_position(name):
    op = OPS[name]
    for xs, positional, _ in both_forms(name):
        if any(isinstance(x, dg.Tensor) and x.requires_grad for x in xs):
            assert gradcheck(lambda *t, p=tuple(positional): op.apply(*t, *p), xs)


def test_clamp_with_positional_bounds():
    """The bug behind this part of the table: backward read the bounds as inputs."""
    x = dg.tensor(np.array([-1.0, 0.0, 0.5, 1.0]), requires_grad=True)
    x.clamp(-0.5, 0.7).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0, 0.0])
    y = dg.tensor(np.array([-1.0, 0.0, 0.5, 1.0]), requires_grad=True)
    dg.clamp(y, max=0.7).sum().backward()
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0, 1.0, 0.0])


def test_an_input_passed_by_name_is_an_input():
    x = dg.tensor(np.ones((2, 3)), requires_grad=True)
    w = dg.tensor(np.ones((4, 3)), requires_grad=True)
    b = dg.tensor(np.zeros(4), requires_grad=True)
    dg.linear(x, w, bias=b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [2.0] * 4)
    with pytest.raises(TypeError, match="multiple values for argument 'bias'"):
        dg.linear(x, w, b, bias=b)
