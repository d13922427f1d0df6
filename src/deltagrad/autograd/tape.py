"""Capture a training step once, replay it without the per-op bookkeeping: ``deltagrad.capture(step)``.

Small networks on a CPU are bound by Python overhead, not arithmetic. The first call of a captured step runs
it eagerly while a tape records three kinds of event: each op applied (its Function, where its arguments come
from), each backward pass (the order of its nodes and where every gradient goes), and each call of a method
marked ``@replayed`` (an optimizer's ``step`` and ``zero_grad``). The tape is then compiled to straight-line
Python (``CapturedStep.code``), which later calls with inputs of the same shapes run: the same forward and
backward rules on fresh arrays, but no Tensor, graph node, topological sort or version check is made. A new
input shape (say a smaller last batch) is captured anew.

Rules, as for ``jax.jit`` or CUDA graphs: the step must be the same sequence of deltagrad ops every call
(no Python branching on values); whatever depends on the inputs must be computed by ops: a value computed
outside them inside the step (NumPy on ``x.data``, ``.item()``, max pooling's ``return_indices``) is frozen
at capture. Tensor hooks and item assignment are refused. In-place updates of state outside ops (a
counter's ``add_(1)``) are repeated; ops that draw random numbers (dropout) draw new ones at every replay,
since their forward runs again.

    step = deltagrad.capture(lambda x, y: train_step(model, optimizer, x, y))
    for x, y in loader:
        loss = step(x, y)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from deltagrad import tensor as _tensor
from deltagrad.autograd import function as _function
from deltagrad.autograd.engine import store_leaf_grad
from deltagrad.autograd.function import Function, node_at, sum_to
from deltagrad.backend import quiet_floating_point, restore_floating_point
from deltagrad.tensor import Tensor


class CaptureError(RuntimeError):
    """The step cannot be captured (it uses something a replay could not repeat)."""


# an argument's origin in the tape: an input of the step, the output of an earlier op, or a live tensor
INPUT, SLOT, LIVE, VALUE = 0, 1, 2, 3


class _Tape:
    def __init__(self, inputs: tuple) -> None:
        self.events: list[tuple] = []
        self.slot_of: dict[int, int] = {}      # id(Tensor made during capture) -> slot
        self.keep: list[Tensor] = []           # keeps captured tensors alive so ids stay unique
        self.input_of = {id(t): k for k, t in enumerate(inputs) if isinstance(t, Tensor)}
        self.n_slots = 0
        self.suspended = 0  # > 0 inside a @replayed call: what it does is repeated by calling it again
        self.run: Callable[..., Any] | None = None  # once captured: the compiled replay, and its source
        self.code = ""

    def source(self, a: Any) -> tuple:
        if isinstance(a, Tensor):
            key = id(a)
            if key in self.input_of:
                return (INPUT, self.input_of[key])
            if key in self.slot_of:
                return (SLOT, self.slot_of[key])
            return (LIVE, a)
        return (VALUE, a)

    def slot_number(self, t: Tensor) -> Any:
        kind, ref = self.source(t)
        return _Slot(ref) if kind == SLOT else _Slot(-ref - 1) if kind == INPUT else t

    def new_slot(self, t: Tensor) -> int:
        slot = self.n_slots
        self.n_slots += 1
        self.slot_of[id(t)] = slot
        self.keep.append(t)
        return slot

    # -- recording, called from the op recorder, the engine and @replayed methods -----------------------
    def op(self, cls: type[Function], args: tuple, extra: tuple, params: dict, result: Any) -> None:
        """An op applied to ``args`` (its inputs), with parameters ``extra`` (by position) and ``params``."""
        if self.suspended:
            return
        needs = (tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
                 if isinstance(result, Tensor) and result._node is not None else None)
        sources = tuple(self.source(a) for a in args)
        slot = self.new_slot(result) if isinstance(result, Tensor) else None
        self.events.append(("op", cls, sources, extra, params, slot, needs, result._node if needs else None))

    def backward(self, order: list[Function], roots: list[Function], grads: dict, plain: bool) -> None:
        """Called by the engine before a backward pass runs, with its node order and seed gradients."""
        if not plain or len(grads) != len({id(node) for node in roots}):
            raise CaptureError("a captured step may only call plain backward() on non-leaf outputs")
        slot_of_node = {}
        for ev in self.events:
            if ev[0] == "op" and ev[7] is not None:
                slot_of_node[id(ev[7])] = ev[5]
        plan = []
        for node in order:
            if id(node) not in slot_of_node:
                raise CaptureError("backward reaches a node made before the captured step began; "
                                   "detach() values carried over from earlier steps")
            if node._hooks:
                raise CaptureError("tensor hooks cannot be captured; remove them or run the step eagerly")
            dests = []
            for t, need, v in zip(node._inputs, node.needs_input_grad, node._versions):
                tn = node_at(t, v) if need else None
                if not need:
                    dests.append(None)
                elif tn is not None:
                    dests.append((SLOT, slot_of_node[id(tn)], t.shape, t.dtype))
                else:
                    if t._hooks:
                        raise CaptureError("tensor hooks cannot be captured")
                    dests.append((LIVE, t, t.shape, t.dtype))
            plan.append((slot_of_node[id(node)], dests))
        seeds = [(slot_of_node[id(node)], np.array(grads[id(node)], copy=True)) for node in roots]
        self.events.append(("backward", plan, seeds))

    def call(self, fn: Callable, args: tuple, kwargs: dict) -> None:
        self.events.append(("call", fn, args, kwargs))

    def alias(self, new: Tensor, old: Tensor) -> None:
        """``new`` shares ``old``'s values (a detached copy): replay reads it from the same place."""
        src = self.source(old)
        if src[0] == SLOT:
            self.slot_of[id(new)] = src[1]
            self.keep.append(new)
        elif src[0] == INPUT:
            self.input_of[id(new)] = src[1]
            self.keep.append(new)

    def inplace(self, target: Tensor, ufunc: Any, other: Any) -> None:
        """An in-place update outside any op (a counter, a buffer): repeat it if it does not use step values."""
        if self.suspended:
            return
        if ufunc is None:
            raise CaptureError("item assignment inside a captured step cannot be replayed; use where() or an op")
        if isinstance(other, Tensor) and self.source(other)[0] != LIVE:
            raise CaptureError("an in-place update with a value computed inside the captured step cannot be "
                               "replayed; compute it with ops instead")
        self.events.append(("call", Tensor._inplace, (target, ufunc, other), {}))


_recording: list[_Tape] = []   # the tape being recorded, if any (a list so that nesting is refused)


def replayed(method: Callable) -> Callable:
    """Mark a method with side effects (an optimizer's ``step``) so that captured steps repeat the call."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _recording:
            return method(self, *args, **kwargs)
        tape = _recording[-1]
        if not tape.suspended:
            tape.call(method, (self, *args), kwargs)
        tape.suspended += 1  # the ops, backward passes and updates inside are the method's own business
        try:
            return method(self, *args, **kwargs)
        finally:
            tape.suspended -= 1

    return wrapper


class _Codegen:
    """Python source for a tape, one statement group per op and per backward node, and the names it uses."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {"new": object.__new__, "sum_to": sum_to, "store": store_leaf_grad,
                                      "pad": _pad, "outputs": _outputs}
        self.bound: dict[tuple[str, int], str] = {}
        self.lines: list[str] = []

    def bind(self, prefix: str, value: Any) -> str:
        """A global name for a value fixed at capture (a parameter, a class, a constant)."""
        key = self.bound.get((prefix, id(value)))
        if key is None:
            key = self.bound[prefix, id(value)] = f"{prefix}_{len(self.names)}"
            self.names[key] = value
        return key

    def group(self, *lines: str) -> None:
        self.lines += lines

    def build(self, result: str) -> tuple[Callable[..., Any], str]:
        """The function ``replay(inputs)`` that runs every statement and returns ``result``, and its source.
        (Compiling costs about 0.3 ms per op: a 10,000-op step takes seconds to capture.)"""
        source = "def replay(inputs):\n" + "".join(f"    {line}\n" for line in self.lines + [f"return {result}"])
        namespace = dict(self.names)
        exec(compile(source, "<captured step>", "exec"), namespace)  # our own generated source
        return namespace["replay"], source


def _compile(tape: _Tape, structure: Any) -> tuple[Callable[..., Any], str]:
    """Turn the tape into straight-line Python: one statement per forward rule, backward rule and gradient.

    What the engine decides at run time (which node comes next, where each gradient goes, when a slot's
    gradients are complete) is decided here, once. The source is kept (``CapturedStep.code``) so that the
    replayed step can be read. Returns the function ``(inputs) -> outputs`` and its source.
    """
    gen = _Codegen()
    gen.names["structure"] = structure
    bind = gen.bind

    def arg(src: tuple) -> str:
        kind, ref = src
        if kind == INPUT:
            return f"inputs[{ref}].data"
        if kind == SLOT:
            return f"v{ref}"
        if kind == LIVE:  # read at every replay: an optimizer or load_state_dict may rebind .data
            return f"{bind('t', ref)}.data"
        return bind("k", ref)

    for ev in tape.events:
        if ev[0] == "op":
            _, cls, sources, extra, params, slot, needs, _node = ev
            fn = bind(cls.__name__, cls)
            kw = (f", *{bind('x', extra)}" if extra else "") + (f", **{bind('p', params)}" if params else "")
            args = ", ".join(arg(s) for s in sources)
            v, c, a = f"v{slot}", f"c{slot}", f"a{slot}"
            if needs is None:
                gen.group(f"# {cls.__name__}", f"{v} = {fn}.forward(new({fn}), {args}{kw})")
            else:
                gen.group(f"# {cls.__name__}",
                          f"{a} = ({args}{',' if len(sources) == 1 else ''})",
                          f"{c} = new({fn})",
                          f"{v} = {fn}.forward({c}, *{a}{kw})",
                          f"{c}._arrays, {c}._out, {c}.needs_input_grad = {a}, {v}, {tuple(needs)!r}")
        elif ev[0] == "backward":
            _compile_backward(ev[1], ev[2], gen)
        else:
            _, fn, args, kwargs = ev
            kw = f", **{bind('p', kwargs)}" if kwargs else ""
            gen.group(f"{bind('f', fn)}(*{bind('a', args)}{kw})  # {getattr(fn, '__qualname__', fn)}")
    slots = sorted({int(s) for s in _slots_in(structure) if isinstance(s, _Slot) and s >= 0})
    values = ", ".join(f"{s}: v{s}" for s in slots)
    return gen.build(f"outputs(structure, inputs, {{{values}}})")


def _compile_backward(plan: list, seeds: list, gen: _Codegen) -> None:
    """The engine's reverse pass for a fixed node order: a slot's gradient is complete when its node comes."""
    bind = gen.bind
    gen.group("# backward", "owned = set()", *(f"g{slot} = None" for slot, _ in plan))
    for slot, seed in seeds:
        gen.group(f"g{slot} = {bind('s', seed)}.copy()  # the seed; a rule may scale its g in place")
    for slot, dests in plan:
        lines = [f"if g{slot} is not None:",
                 f"    r = c{slot}.backward(g{slot})",
                 f"    if type(r) is not tuple or len(r) < {len(dests)}: r = pad(r, {len(dests)})"]
        for i, dest in enumerate(dests):
            if dest is None:
                continue
            kind, target, shape, dtype = dest
            lines += [f"    gi = r[{i}]",
                      "    if gi is not None:",
                      f"        if gi.shape != {shape!r}: gi = sum_to(gi, {shape!r})",
                      f"        if gi.dtype != {bind('d', dtype)}: gi = gi.astype({bind('d', dtype)})"]
            if kind == SLOT:
                lines.append(f"        g{target} = gi if g{target} is None else g{target} + gi")
            else:
                lines.append(f"        store({bind('t', target)}, gi, owned)")
        lines.append(f"g{slot} = c{slot} = a{slot} = r = gi = None  # free what this node held")
        gen.group(*lines)


def _pad(r: Any, n: int) -> tuple:
    """A backward's result as an n-tuple (the engine allows one array, or fewer gradients than inputs)."""
    r = r if type(r) is tuple else (r,)
    return r + (None,) * (n - len(r))


class _Slot(int):
    """In a tape's output structure: the step returned the value of this slot (or, negative, input −k−1)."""


def _map(structure: Any, leaf: Callable[[Any], Any]) -> Any:
    """``structure`` (tensors in tuples, lists and dicts) with ``leaf`` applied to every tensor or slot."""
    if isinstance(structure, (Tensor, _Slot)):
        return leaf(structure)
    if isinstance(structure, (tuple, list)):
        return type(structure)(_map(s, leaf) for s in structure)
    if isinstance(structure, dict):
        return {k: _map(v, leaf) for k, v in structure.items()}
    return structure


def _outputs(structure: Any, inputs: tuple, values: dict[int, Any]) -> Any:
    """The step's outputs for this replay: each slot's new value as a tensor without a graph."""
    def fresh(s: Any) -> Any:
        if isinstance(s, _Slot):
            return Tensor._make(values[s], None) if s >= 0 else inputs[-s - 1]
        return s  # a live tensor (a parameter, say) returned as itself

    return _map(structure, fresh)


def _slots_in(structure: Any) -> list[Any]:
    found: list[Any] = []
    _map(structure, found.append)
    return found


def _signature(args: tuple) -> tuple:
    return tuple((a.data.shape, a.data.dtype) if isinstance(a, Tensor) else ("value", repr(a)) for a in args)


class CapturedStep:
    """A step function that is recorded on its first call for each input signature and replayed after."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.tapes: dict[tuple, tuple[_Tape, Any]] = {}

    def __call__(self, *args: Any) -> Any:
        key = []
        for a in args:  # the common case, tensors only, without the conversions of the general one
            if not isinstance(a, Tensor):
                args = tuple(Tensor(a) if isinstance(a, np.ndarray) else a for a in args)
                key = _signature(args)
                break
            data = a.data
            key.append((data.shape, data.dtype))
        key = tuple(key)
        entry = self.tapes.get(key)
        if entry is None:
            return self._capture(key, args)
        token = quiet_floating_point()
        try:
            return entry[0].run(args)
        finally:
            restore_floating_point(token)

    def _capture(self, key: tuple, args: tuple) -> Any:
        if _recording:
            raise CaptureError("captured steps cannot be nested")
        tape = _Tape(args)
        _recording.append(tape)
        _function._tape = _tensor._tape = tape
        try:
            out = self.fn(*args)
        finally:
            _recording.pop()
            _function._tape = _tensor._tape = None
        # outputs become slot numbers, so the tape keeps no tensor, graph or activation of the capture run
        structure = _map(out, tape.slot_number)
        tape.run, tape.code = _compile(tape, structure)
        self.tapes[key] = (tape, structure)
        tape.keep, tape.slot_of, tape.input_of = [], {}, {}
        return _map(out, Tensor.detach)

    @property
    def code(self) -> str:
        """The Python each replay runs (one function per captured input signature), for reading."""
        return "\n".join(tape.code for tape, _ in self.tapes.values())


def capture(fn: Callable[..., Any]) -> CapturedStep:
    """Record ``fn`` (a whole training step: forward, backward, optimizer) once; replay it on later calls.

    Returns outputs as tensors without a graph (call ``.item()`` on a returned loss as usual). Capturing
    compiles the step's code, which costs about as much as 10 to 20 eager steps of it: it pays for a step that
    runs many times with the same input shapes.
    """
    return CapturedStep(fn)
