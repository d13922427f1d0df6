"""Hook handles and the machinery behind ``Module.register_full_backward_hook``.

A full backward hook sees a module's *backward signal*: dL/d(output) coming in and dL/d(input) going
out. It is built on tensor hooks (``Tensor.register_hook``): before ``forward`` the inputs that require
grad pass through an identity node, after it the outputs do too. When backprop reaches the output node
its gradient is complete (every consumer has added its share): that is ``grad_output``. When it reaches
the input node, everything inside the module has been backpropagated: that is ``grad_input``, and the
hook runs there (and may return replacements). Several tensors are gated together through one node
(their flattened values concatenated), so the hook fires once, with all of them complete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deltagrad.autograd.function import Function
from deltagrad.backend import xp
from deltagrad.ops.shape import cat, reshape
from deltagrad.tensor import Tensor


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods: ``handle.remove()`` unregisters the hook.

    Also a context manager: the hook is removed when the ``with`` block ends.
    """

    _next_id = 0

    def __init__(self, *hook_dicts: dict) -> None:
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        self._dicts = hook_dicts

    def remove(self) -> None:
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def add_hook(hooks: dict, hook: Callable, prepend: bool = False, *extra: dict) -> RemovableHandle:
    """Insert ``hook`` into the ordered dict ``hooks`` (first if ``prepend``) and return its handle."""
    handle = RemovableHandle(hooks, *extra)
    hooks[handle.id] = hook
    if prepend:
        items = list(hooks.items())
        hooks.clear()
        hooks[handle.id] = hook
        hooks.update(items[:-1])
    return handle


# ---- gate nodes: identity in the forward pass, a place for a hook in the backward pass -------------------


class _Identity(Function):
    """y = x;  dx = g  (one tensor gated)"""

    is_view = True

    def forward(ctx, x):
        return x

    def backward(ctx, g):
        return g


class _Pack(Function):
    """y = the inputs flattened and concatenated;  each input's gradient is its slice of g, reshaped"""

    def forward(ctx, *xs):
        ctx.layout = _layout(xs)
        return xp.concatenate([x.reshape(-1) for x in xs])

    def backward(ctx, g):
        return tuple(_Unpack.apply(g, a, b, shape, dtype) if need else None
                     for (a, b, shape, dtype), need in zip(ctx.layout, ctx.needs_input_grad))


class _Unpack(Function):
    """y = p[a:b] reshaped (and cast back to its own dtype);  dp = g flattened, zeros outside [a, b)"""

    def forward(ctx, p, a, b, shape, dtype):
        ctx.span = (a, b, p.shape[0], p.dtype)
        return p[a:b].reshape(shape).astype(dtype, copy=True)

    def backward(ctx, g):
        a, b, n, dtype = ctx.span
        flat = reshape(g, (-1,))
        return cat([np.zeros(a, dtype), flat, np.zeros(n - b, dtype)]), None, None, None, None


def _layout(xs: tuple) -> list[tuple[int, int, tuple, Any]]:
    out, start = [], 0
    for x in xs:
        out.append((start, start + x.size, x.shape, x.dtype))
        start += x.size
    return out


def gate(tensors: list[Tensor], on_grads: Callable[[tuple], tuple | None]) -> list[Tensor]:
    """Route ``tensors`` through one identity node; ``on_grads(grads)`` runs once when their gradients are
    complete in backward, and may return replacement gradients (a tuple, ``None`` entries kept as they were).
    """
    if len(tensors) == 1:
        y = _Identity.apply(tensors[0])

        def one(g: Tensor) -> Tensor | None:
            res = on_grads((g,))
            return None if res is None or res[0] is None else res[0]

        y.register_hook(one)
        return [y]

    packed = _Pack.apply(*tensors)
    layout = _layout(tuple(t.data for t in tensors))

    def many(g: Tensor) -> Tensor | None:
        grads = tuple(_Unpack.apply(g, a, b, shape, dtype) for a, b, shape, dtype in layout)
        res = on_grads(grads)
        if res is None:
            return None
        return _Pack.apply(*(old if new is None else new for old, new in zip(grads, res)))

    packed.register_hook(many)
    return [_Unpack.apply(packed, a, b, shape, dtype) for a, b, shape, dtype in layout]


class BackwardHook:
    """One forward call's bookkeeping for full backward (pre-)hooks: gates inputs and outputs, collects
    ``grad_output`` at the output gate, and calls the hooks at the input gate."""

    def __init__(self, module: Any, hooks: list[Callable], pre_hooks: list[Callable]) -> None:
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.n_inputs = 0
        self.input_index: list[int] = []
        self.grad_output: tuple | None = None
        self.n_outputs = 0

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        self.input_index = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not self.input_index:
            return args
        gated = gate([args[i] for i in self.input_index], self._on_input_grads)
        args = list(args)
        for i, t in zip(self.input_index, gated):
            args[i] = t
        return tuple(args)

    def setup_output_hook(self, result: Any) -> Any:
        is_tuple = isinstance(result, tuple)
        outs = result if is_tuple else (result,)
        self.n_outputs = len(outs)
        index = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        if not index:
            return result

        def on_output_grads(grads: tuple) -> tuple | None:
            full: list[Any] = [None] * self.n_outputs
            for i, g in zip(index, grads):
                full[i] = g
            replaced = False
            for hook in self.pre_hooks:
                res = hook(self.module, tuple(full))
                if res is not None:
                    full = list(_checked(res, self.n_outputs, "grad_output"))
                    replaced = True
            self.grad_output = tuple(full)
            if not self.input_index:  # nothing flows into the inputs: the hooks run here, grad_input all None
                self._call_hooks((None,) * self.n_inputs)
            return tuple(full[i] for i in index) if replaced else None

        gated = gate([outs[i] for i in index], on_output_grads)
        outs = list(outs)
        for i, t in zip(index, gated):
            outs[i] = t
        return tuple(outs) if is_tuple else outs[0]

    def _on_input_grads(self, grads: tuple) -> tuple | None:
        full: list[Any] = [None] * self.n_inputs
        for i, g in zip(self.input_index, grads):
            full[i] = g
        res = self._call_hooks(tuple(full))
        return None if res is None else tuple(res[i] for i in self.input_index)

    def _call_hooks(self, grad_input: tuple) -> tuple | None:
        if self.grad_output is None:
            # no gradient came through the output gate in this pass: a second backward through the graph
            # of the first one (create_graph) reaches the input gate alone; as in PyTorch, hooks skip it
            return None
        replaced = None
        for hook in self.hooks:
            res = hook(self.module, grad_input if replaced is None else replaced, self.grad_output)
            if res is not None:
                replaced = _checked(res, self.n_inputs, "grad_input")
        self.grad_output = None
        return replaced


def _checked(res: Any, n: int, what: str) -> tuple:
    res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
    if len(res) != n:
        raise RuntimeError(f"backward hook returned {len(res)} values for {what}, expected {n}")
    return res
