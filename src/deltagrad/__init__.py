"""deltagrad: backpropagation as it is taught, with PyTorch's names, fast on the CPU.

>>> import deltagrad as dg
>>> x = dg.tensor([1.0, 0.1], requires_grad=True)
>>> y = dg.tanh(x).sum(); y.backward(); x.grad
"""

from __future__ import annotations

from deltagrad import autograd, data, func, nn, optim, random, testing
from deltagrad.autograd import capture, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from deltagrad.backend import bool_, float16, float32, float64, int32, int64, uint8
from deltagrad.creation import (
    arange,
    as_tensor,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from deltagrad.io import load, save
from deltagrad.ops import *  # noqa: F403  (every op function: deltagrad.exp, deltagrad.matmul, ...)
from deltagrad.random import get_rng_state, manual_seed, set_rng_state
from deltagrad.tensor import Tensor

bool = bool_
double, float, long = float64, float32, int64
__version__ = "0.1.0"
