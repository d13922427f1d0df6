"""Every registered op against PyTorch 2.13 in float64: forward values and input gradients to 1e-7.

Skipped where torch is not installed (CI installs it). The op table is walked, so every op needs an entry
in ``torch_reference.REFERENCE`` (or a reason in ``NO_TORCH_EQUIVALENT``).
"""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from conftest import example_inputs
from deltagrad.autograd import OPS
from torch_reference import NO_TORCH_EQUIVALENT, REFERENCE

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-7, 1e-10


def to_torch(a):
    if isinstance(a, np.ndarray):
        return torch.tensor(a, requires_grad=a.dtype.kind == "f")
    return a


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_matches_torch(name):
    if name in NO_TORCH_EQUIVALENT:
        pytest.skip(NO_TORCH_EQUIVALENT[name])
    assert name in REFERENCE, f"op {name!r} has no PyTorch reference in tests/torch_reference.py"
    op = OPS[name]
    for case, (args, kwargs) in enumerate(op.examples(np.random.default_rng(7))):
        ours_in = example_inputs(args)
        theirs_in = [to_torch(a) for a in args]
        ours = op.apply(*ours_in, **kwargs)
        theirs = REFERENCE[name](torch, *theirs_in, **kwargs)
        if isinstance(theirs, tuple):
            theirs = theirs[0]
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name} forward, case {case}")
        if not ours.requires_grad:
            continue
        v = np.random.default_rng(case).standard_normal(ours.shape)
        ours.backward(dg.Tensor(v))
        theirs.backward(torch.tensor(v))
        for k, (a, b) in enumerate(zip(ours_in, theirs_in)):
            if isinstance(a, dg.Tensor) and a.requires_grad:
                assert b.grad is not None, f"{name}: torch computed no gradient for input {k}"
                np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=RTOL, atol=ATOL,
                                           err_msg=f"{name} gradient of input {k}, case {case}")
