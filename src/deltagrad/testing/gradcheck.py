"""gradcheck / gradgradcheck: compare backward with central differences, as ``torch.autograd.gradcheck``.

The numerical Jacobian perturbs each input element by ±eps; the analytical one is built row by row
from backward passes. Use float64: in float32 rounding swamps the differences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deltagrad.autograd import grad as autograd_grad
from deltagrad.autograd.grad_mode import enable_grad, no_grad
from deltagrad.tensor import Tensor


class GradcheckError(AssertionError):
    """Backward disagrees with the numerical derivative."""


def _outputs(fn: Callable, inputs: Sequence[Any]) -> list[Tensor]:
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def _numerical(fn: Callable, inputs: list[Any], wrt: list[int], eps: float) -> list[list[np.ndarray]]:
    """J[k][j]: d(output k)/d(input j) as an (out.size, in.size) matrix."""
    with no_grad():
        outs = _outputs(fn, inputs)
    jac = [[np.zeros((o.data.size, inputs[j].data.size)) for j in wrt] for o in outs]
    for jj, j in enumerate(wrt):
        flat = inputs[j].data.reshape(-1)  # a view: perturb in place
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            with no_grad():
                plus = [o.data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[i] = orig - eps
            with no_grad():
                minus = [o.data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[i] = orig
            for k in range(len(outs)):
                jac[k][jj][:, i] = (plus[k] - minus[k]) / (2 * eps)
    return jac


def _analytical(fn: Callable, inputs: list[Any], wrt: list[int]) -> list[list[np.ndarray]]:
    outs = _outputs(fn, inputs)
    jac = [[np.zeros((o.data.size, inputs[j].data.size)) for j in wrt] for o in outs]
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for i in range(o.data.size):
            v = np.zeros(o.data.size, dtype=o.dtype)
            v[i] = 1
            gs = autograd_grad([o], [inputs[j] for j in wrt], grad_outputs=[Tensor(v.reshape(o.shape))],
                               retain_graph=True, allow_unused=True)
            for jj, g in enumerate(gs):
                if g is not None:
                    jac[k][jj][i, :] = g.data.reshape(-1)
    return jac


def gradcheck(
    fn: Callable[..., Any], inputs: Sequence[Any] | Tensor, eps: float = 1e-6, atol: float = 1e-5,
    rtol: float = 1e-3, raise_exception: bool = True,
) -> bool:
    """True if backward of ``fn`` at ``inputs`` matches central differences for every input requiring grad.

    >>> x = deltagrad.tensor(np.random.randn(3), requires_grad=True)   # float64
    >>> gradcheck(deltagrad.tanh, (x,))
    True
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    wrt = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck needs at least one input tensor with requires_grad=True")
    for j in wrt:
        if inputs[j].dtype != np.float64:
            raise ValueError(f"gradcheck input {j} is {inputs[j].dtype}; use float64 (double()) for checking")
    numerical = _numerical(fn, inputs, wrt, eps)
    analytical = _analytical(fn, inputs, wrt)
    for k, (num_k, ana_k) in enumerate(zip(numerical, analytical)):
        for jj, (n, a) in enumerate(zip(num_k, ana_k)):
            if not np.allclose(a, n, rtol=rtol, atol=atol, equal_nan=True):
                if not raise_exception:
                    return False
                worst = np.unravel_index(np.argmax(np.abs(a - n)), a.shape) if a.size else ()
                raise GradcheckError(
                    f"Jacobian mismatch for output {k} with respect to input {wrt[jj]}: "
                    f"largest difference at (output element, input element) {worst}: "
                    f"analytical {a[worst]:.8g} vs numerical {n[worst]:.8g}"
                )
    return True


def gradgradcheck(
    fn: Callable[..., Any], inputs: Sequence[Any] | Tensor, grad_outputs: Sequence[Tensor] | None = None,
    eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck the map (inputs, v) -> vᵀ·J(inputs) built with create_graph."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    wrt = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs]
    n_in = len(inputs)

    def first_derivative(*args: Any) -> tuple[Tensor, ...]:
        xs, vs = list(args[:n_in]), list(args[n_in:])
        with enable_grad():  # the numerical half calls this under no_grad; the first derivative needs a graph
            ys = _outputs(fn, xs)
            gs = autograd_grad(ys, [xs[j] for j in wrt], grad_outputs=vs, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None and g.requires_grad)

    return gradcheck(first_derivative, inputs + list(grad_outputs), eps, atol, rtol, raise_exception)
