"""Shared fixtures: a seeded NumPy generator and the op-example conversion used by the op-table tests."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def example_inputs(args: tuple) -> list:
    """Float arrays become Tensors requiring grad, other arrays plain Tensors, everything else stays."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            out.append(dg.Tensor(a.copy(), requires_grad=a.dtype.kind == "f"))
        else:
            out.append(a)
    return out
