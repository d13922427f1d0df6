"""The reverse pass: order the recorded nodes, then carry dL/d(output) down to every input.

For each node, from the loss down: its output gradient is complete (every consumer has added its share),
so call the node's backward to get the gradient of each input, sum broadcast gradients back to the input's
shape (the one place this happens), and add them to what the input's own node has gathered so far.
Leaves collect theirs in ``.grad``. The order is found without recursion, so 100,000-op chains are fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deltagrad.autograd import function as _function
from deltagrad.autograd.function import Function, cast, node_at, sum_to
from deltagrad.autograd.grad_mode import state as _grad_state
from deltagrad.backend import quiet_floating_point, restore_floating_point
from deltagrad.tensor import Tensor


def topological_order(roots: Sequence[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, every node after all nodes that feed it (iterative DFS, post-order)."""
    order: list[Function] = []
    seen: set[int] = set()
    stack: list[tuple[Function, bool]] = [(r, False) for r in roots]
    history = _function._history or None  # tensors changed in place: their consumers read older nodes
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if history is None:
            for t in node._inputs:
                if isinstance(t, Tensor) and t._node is not None and id(t._node) not in seen:
                    stack.append((t._node, False))
            continue
        for t, v in zip(node._inputs, node._versions):
            if isinstance(t, Tensor):
                tn = t._node if id(t) not in history else node_at(t, v)
                if tn is not None and id(tn) not in seen:
                    stack.append((tn, False))
    return order


def _as_grad(g: Any, like: Tensor, create_graph: bool) -> Any:
    if g is None:
        if like.data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a scalar output, not shape {like.shape}; "
                "pass gradient= (the vector in the vector-Jacobian product)"
            )
        data = like.data
        # a NumPy scalar loss's seed made directly: 0.16 µs against ones_like's 0.8 (which other arrays need)
        g = np.array(1, data.dtype) if data.ndim == 0 and type(data) is np.ndarray else np.ones_like(data)
    elif isinstance(g, Tensor):
        g = g if create_graph else g.data
    else:
        g = np.asarray(g, dtype=like.dtype)
    if g.shape != like.shape:
        raise RuntimeError(f"gradient has shape {tuple(g.shape)} but the output has shape {like.shape}")
    if create_graph and not isinstance(g, Tensor):  # under create_graph every gradient a rule sees is a Tensor
        g = Tensor._make(g, None)
    return g


def _fit(g: Any, t: Tensor) -> Any:
    """Sum a broadcast gradient back to ``t``'s shape and give it ``t``'s dtype."""
    if g.shape != t.data.shape:
        g = sum_to(g, t.data.shape)
    if g.dtype != t.data.dtype:
        g = cast(g, t.data.dtype)
    return g


def store_leaf_grad(t: Tensor, g: Any, owned: set[int]) -> None:
    """Add array ``g`` to leaf ``t``'s ``.grad``. A first gradient is stored as is unless it is a view, read-only,
    or already another leaf's (``owned``): ``x + y`` hands both inputs one array, and ``x.grad.zero_()`` must
    not clear ``y.grad``."""
    if t.grad is None:
        if g.base is not None or id(g) in owned or not g.flags.writeable:
            g = g.copy()
        owned.add(id(g))
        t.grad = Tensor._make(g, None)
    else:
        t.grad = Tensor._make(t.grad.data + g, None)


def _call_hooks(hooks: list, g: Any, create_graph: bool) -> Any:
    for hook in hooks:
        gt = g if isinstance(g, Tensor) else Tensor._make(g, None)
        out = hook(gt)
        if out is not None:
            g = out if create_graph else (out.data if isinstance(out, Tensor) else np.asarray(out))
    return g


def backward(
    outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None, retain_graph: bool | None = None,
    create_graph: bool = False, inputs: Sequence[Tensor] | None = None, accumulate: bool = True,
    allow_unused: bool = False,
) -> list[Any] | None:
    """Run the reverse pass from ``outputs``.

    With ``accumulate`` (``Tensor.backward``) gradients are added to leaves' ``.grad`` (only to ``inputs``
    if given). Without it (``autograd.grad``) nothing is stored and the gradients of ``inputs`` are returned.
    """
    if retain_graph is None:
        retain_graph = create_graph
    grads: dict[int, Any] = {}
    roots: list[Function] = []
    for i, out in enumerate(outputs):
        if out._view is not None:  # a view whose base was changed in place: its history is the base's new one
            out._fresh()
        if not out._requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and has no grad_fn: nothing recorded leads to it"
                if i == 0 else f"output {i} does not require grad"
            )
        g = _as_grad(None if grad_outputs is None else grad_outputs[i], out, create_graph)
        if out._node is None:  # the output is itself a leaf
            roots_leaf = grads.setdefault(("leaf", id(out)), [out, None])
            roots_leaf[1] = g if roots_leaf[1] is None else roots_leaf[1] + g
            continue
        key = id(out._node)
        grads[key] = g if key not in grads else grads[key] + g
        roots.append(out._node)

    wanted = None if inputs is None else {id(t._node) if t._node is not None else id(t): k
                                          for k, t in enumerate(inputs)}
    results: list[Any] = [None] * (len(inputs) if inputs is not None else 0)
    owned: set[int] = set()  # arrays already stored as some leaf's .grad: never alias two leaves

    def deliver(t: Tensor, g: Any) -> None:
        if t._hooks:
            g = _call_hooks(t._hooks, g, create_graph)
        if wanted is not None and id(t) in wanted:
            k = wanted[id(t)]
            results[k] = g if results[k] is None else results[k] + g
            if not accumulate:
                return
        elif not accumulate or wanted is not None:
            return
        if create_graph:
            t.grad = g if t.grad is None else t.grad + g
        else:
            store_leaf_grad(t, g, owned)

    for key in [k for k in grads if isinstance(k, tuple)]:
        t, g = grads.pop(key)
        deliver(t, g)

    order = topological_order(roots)
    tape = _function._tape  # deltagrad.capture is recording a step: it keeps this pass's plan
    if tape is not None and not tape.suspended:
        tape.backward(list(reversed(order)), roots, grads, plain=not create_graph and inputs is None)
    token = quiet_floating_point()
    try:
        plain = wanted is None and accumulate and not create_graph
        _reverse(order, grads, deliver, wanted, results, retain_graph, create_graph, owned if plain else None)
    finally:
        restore_floating_point(token)

    if inputs is None or accumulate:
        return None
    for k, (t, r) in enumerate(zip(inputs, results)):
        if r is None and not allow_unused:
            raise RuntimeError(
                f"input {k} (shape {t.shape}) was not used to compute the outputs; pass allow_unused=True"
            )
        if r is not None and not isinstance(r, Tensor):
            results[k] = Tensor._make(r, None)
    return results


def _reverse(order: list[Function], grads: dict, deliver: Any, wanted: dict | None, results: list,
             retain_graph: bool, create_graph: bool, owned: set | None = None) -> None:
    """Visit the nodes from the outputs down; each runs backward once all its consumers have added to g.

    With ``owned`` (the plain ``loss.backward()``), a leaf without hooks has its gradient stored directly;
    ``deliver`` handles every other case."""
    recording = _grad_state.enabled
    _grad_state.enabled = create_graph
    history = _function._history or None
    try:
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._freed:
                node._check_alive()
            if node._hooks:
                g = _call_hooks(node._hooks, g, create_graph)
            if wanted is not None and id(node) in wanted:
                k = wanted[id(node)]
                results[k] = g if results[k] is None else results[k] + g
            node._create_graph = create_graph
            gin = node.backward(g)
            if not isinstance(gin, tuple):
                gin = (gin,)
            for t, gi, need in zip(node._inputs, gin, node.needs_input_grad):
                if not need or gi is None:
                    continue
                data = t.data
                if gi.shape != data.shape or gi.dtype != data.dtype:
                    gi = _fit(gi, t)
                tn = t._node
                if history is not None and id(t) in history:  # changed in place since: its node back then
                    tn = node_at(t, next(v for u, v in zip(node._inputs, node._versions) if u is t))
                if tn is None:
                    if owned is not None and not t._hooks:
                        store_leaf_grad(t, gi, owned)
                    else:
                        deliver(t, gi)
                else:
                    k = id(tn)
                    grads[k] = gi if k not in grads else grads[k] + gi
            if not retain_graph:
                node._release()
    finally:
        _grad_state.enabled = recording
