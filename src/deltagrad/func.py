"""Function transforms with ``torch.func``'s names: grad, value_and_grad, vjp, jacobian, hessian, hvp.

They sit above the ops (a Jacobian stacks its rows). Each takes a function of tensors and returns a
function (or values), as ``torch.func`` does. They are built on ``autograd.grad`` with ``create_graph=True``
where the result may be differentiated again, so they nest: ``hessian(f)`` is ``jacobian(grad(f))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deltagrad.autograd import grad as autograd_grad
from deltagrad.autograd.grad_mode import enable_grad
from deltagrad.ops.shape import reshape, stack
from deltagrad.tensor import Tensor

Argnums = int | Sequence[int]


def _prepare(args: tuple, argnums: Argnums) -> tuple[list, list[int], bool]:
    """Make the differentiated arguments graph leaves; say whether any was already in an outer graph."""
    nums = [argnums] if isinstance(argnums, int) else list(argnums)
    args = list(args)
    nested = False
    for i in nums:
        a = args[i]
        if not isinstance(a, Tensor):
            raise TypeError(f"argument {i} to differentiate must be a Tensor, not {type(a).__name__}")
        if a.dtype.kind != "f":
            raise TypeError(f"argument {i} must be a floating-point tensor, not {a.dtype}")
        if a.requires_grad:
            nested = True
        else:
            args[i] = a.detach().requires_grad_()
    return args, nums, nested


def _finish(x: Any, nested: bool) -> Any:
    if nested or not isinstance(x, Tensor):
        return x
    return x.detach()


def value_and_grad(func: Callable[..., Tensor], argnums: Argnums = 0, has_aux: bool = False) -> Callable:
    """``f -> (x -> (f(x), ∇f(x)))`` for a scalar-valued ``f``; a tuple of gradients if argnums is a tuple."""

    def wrapper(*args: Any) -> Any:
        xs, nums, nested = _prepare(args, argnums)
        with enable_grad():
            out = func(*xs)
            aux = None
            if has_aux:
                out, aux = out
            if not isinstance(out, Tensor) or out.data.size != 1:
                raise RuntimeError(f"grad needs a function with a scalar tensor output, got "
                                   f"{getattr(out, 'shape', type(out).__name__)}")
            gs = autograd_grad([out], [xs[i] for i in nums], create_graph=True, allow_unused=True)
        gs = tuple(_finish(g if g is not None else Tensor(np.zeros_like(xs[i].data)), nested)
                   for g, i in zip(gs, nums))
        g = gs[0] if isinstance(argnums, int) else gs
        value = _finish(out, nested)
        return ((value, aux), g) if has_aux else (value, g)

    return wrapper


def grad(func: Callable[..., Tensor], argnums: Argnums = 0, has_aux: bool = False) -> Callable:
    """``f -> ∇f``: the gradient of a scalar-valued function, as a function (``torch.func.grad``)."""
    vg = value_and_grad(func, argnums, has_aux)

    def wrapper(*args: Any) -> Any:
        (value, g) = vg(*args)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable[..., Tensor], *primals: Tensor) -> tuple[Tensor, Callable]:
    """``(f(x), v -> vᵀ·∂f/∂x)`` for every primal."""
    xs, nums, nested = _prepare(primals, tuple(range(len(primals))))
    with enable_grad():
        out = func(*xs)

    def pullback(v: Tensor) -> tuple[Tensor, ...]:
        with enable_grad():
            gs = autograd_grad([out], xs, grad_outputs=[v], retain_graph=True, create_graph=True,
                               allow_unused=True)
        return tuple(_finish(g if g is not None else Tensor(np.zeros_like(x.data)), nested)
                     for g, x in zip(gs, xs))

    return _finish(out, nested), pullback


def jacobian(func: Callable[..., Tensor], argnums: Argnums = 0) -> Callable:
    """``f -> J``: the Jacobian of shape ``out.shape + x.shape``, one reverse pass per output element."""

    def wrapper(*args: Any) -> Any:
        xs, nums, nested = _prepare(args, argnums)
        with enable_grad():
            out = func(*xs)
            rows: list[list[Tensor]] = [[] for _ in nums]
            for k in range(out.data.size):
                v = np.zeros(out.data.size, out.dtype)
                v[k] = 1
                gs = autograd_grad([out], [xs[i] for i in nums], grad_outputs=[Tensor(v.reshape(out.shape))],
                                   retain_graph=True, create_graph=True, allow_unused=True)
                for j, (g, i) in enumerate(zip(gs, nums)):
                    rows[j].append(g if g is not None else Tensor(np.zeros_like(xs[i].data)))
        jacs = []
        for j, i in enumerate(nums):
            shape = out.shape + xs[i].shape
            if rows[j]:
                jac = reshape(stack(rows[j]), shape)
            else:
                jac = Tensor(np.zeros(shape, xs[i].dtype))
            jacs.append(_finish(jac, nested))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapper


def hessian(func: Callable[..., Tensor], argnums: Argnums = 0) -> Callable:
    """``f -> H``: the matrix of second derivatives of a scalar function, ``jacobian(grad(f))``."""
    return jacobian(grad(func, argnums), argnums)


def hvp(func: Callable[..., Tensor], primals: Tensor | Sequence[Tensor],
        tangents: Tensor | Sequence[Tensor]) -> tuple[Tensor, Any]:
    """``(f(x), H·v)`` without forming H: differentiate ``∇f(x)·v`` once more (Pearlmutter's trick)."""
    single = isinstance(primals, Tensor)
    primals = (primals,) if single else tuple(primals)
    tangents = (tangents,) if isinstance(tangents, Tensor) else tuple(tangents)
    xs, nums, nested = _prepare(primals, tuple(range(len(primals))))
    with enable_grad():
        out = func(*xs)
        gs = autograd_grad([out], xs, create_graph=True)
        dot = None
        for g, v in zip(gs, tangents):
            term = (g * v).sum()
            dot = term if dot is None else dot + term
        hv = autograd_grad([dot], xs, create_graph=nested, allow_unused=True)
    hv = tuple(_finish(h if h is not None else Tensor(np.zeros_like(x.data)), nested) for h, x in zip(hv, xs))
    return _finish(out, nested), hv[0] if single else hv
