"""In-place operations on tensors in the graph, recorded as PyTorch records them.

``h.add_(y)`` (or ``h += y``, ``h[i] = v``, ``h.copy_(src)``, ``h.zero_()``...) on a tensor that is part of a
graph, or with ``y`` requiring grad, is the ordinary op ``add(h_old, y)`` whose result is written into h's own
memory: h stays the same Tensor object, every alias and view of it sees the new values, its version counter
goes up, and its history becomes that op, so gradients are right. Nodes that saved h's old value for their
backward refuse to run (the version check in ``Function.args`` / ``Function.result``), as in PyTorch.

On a view ``v`` of a base ``b`` (``b[:2]``, ``b.view(...)``, ``b.t()``...), ``b``'s history becomes
``copy_slices(b_old, v_new)``: b_old everywhere except the elements of the view, which come from v_new. ``v``,
and every other view of ``b`` the next time it is used, take their history from ``b``'s new one (``refresh``).

PyTorch's rules, kept: a leaf that requires grad (or a view of one) cannot be changed in place while grad is
recorded (do it under ``no_grad()``); a view made under ``no_grad()`` cannot be changed in place with grad on
when that would be recorded. Under ``no_grad()`` everything is allowed and nothing is recorded.

    >>> x = deltagrad.ones(3, requires_grad=True)
    >>> h = x * 2; h[:2].mul_(3); h.sum().backward(); x.grad   # tensor([6., 6., 2.])
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from deltagrad import tensor as _tensor
from deltagrad.autograd import function as _function
from deltagrad.autograd.function import Function, cast, defop
from deltagrad.autograd.grad_mode import state as _grad_state
from deltagrad.backend import xp
from deltagrad.ops import elementwise as _ew
from deltagrad.ops._util import randn
from deltagrad.ops.indexing import GetItem, parse_index
from deltagrad.ops.shape import Reshape, Transpose
from deltagrad.tensor import Tensor

__all__: list[str] = []


def _view_of(x: Any, chain: tuple) -> Any:
    """``x`` seen through the view ops ``chain`` ((cls, args, params) from the base): recorded on Tensors."""
    for cls, args, params in chain:
        x = cls.apply(x, *args, **params) if isinstance(x, Tensor) else cls.forward(object.__new__(cls), x, *args,
                                                                                      **params)
    return x


class CopySlices(Function):
    """y = x with the elements that the view ops ``chain`` select replaced by ``value``: the new history of a
    base when one of its views is changed in place.  dx = g with those elements zeroed,  dvalue = g seen
    through the same view

    >>> copy_slices(zeros(3), ones(2), ((GetItem, (slice(0, 2),), {}),))   # [1., 1., 0.]
    """

    inputs = ("x", "value")
    reads = ((), ())  # only the positions, fixed at forward

    def forward(ctx, x, value, chain):
        # the flat positions of the view's elements: the chain replayed on indices (copies do no harm here)
        at = _view_of(xp.arange(x.size).reshape(x.shape), chain)
        ctx.chain, ctx.shape = chain, x.shape
        out = x.copy()
        flat = out.reshape(-1)
        flat[at.reshape(-1)] = xp.broadcast_to(value, at.shape).reshape(-1)
        mask = xp.zeros(x.size, bool)
        mask[at.reshape(-1)] = True
        ctx.mask = mask.reshape(x.shape)
        return out

    def backward(ctx, g):
        need_x, need_v = ctx.needs_input_grad
        return (_ew.where(ctx.mask, xp.zeros((), g.dtype), g) if need_x else None,
                _view_of(g, ctx.chain) if need_v else None)

    examples = staticmethod(lambda r: [
        ((randn(r, 3, 4), randn(r, 2, 4), ((GetItem, ((slice(0, 2), Ellipsis),), {}),)), {}),
        ((randn(r, 2, 3), randn(r, 3, 2), ((Transpose, (0, 1), {}),)), {}),
        ((randn(r, 2, 3), randn(r, 2), ((Reshape, (6,), {}), (GetItem, ((slice(1, 5, 2),),), {}))),
         {}),
    ])


class Copy(Function):
    """y = ``src`` broadcast to x's shape in x's dtype (``x.copy_(src)``, ``fill_``, ``zero_``);  dsrc = g,
    dx = 0: its old values are gone"""

    inputs = ("x", "src")
    reads = ((), ())

    def forward(ctx, x, src):
        out = xp.empty_like(x)
        xp.copyto(out, src, casting="unsafe")
        return out

    def backward(ctx, g):
        return _ew.zeros_like(g) if ctx.needs_input_grad[0] else None, g

    examples = staticmethod(lambda r: [((randn(r, 2, 3), randn(r, 3)), {}), ((randn(r, 2, 2), randn(r, 2, 2)), {}),
                                       ((randn(r, 3), 0.5), {})])


class IndexPut(Function):
    """y = x with ``y[index] = value`` (``x[index] = value``);  dx = g with the indexed elements zeroed,
    dvalue = g[index] (summed back to value's shape by the engine)"""

    inputs = ("x", "value")
    reads = ((), ())

    def forward(ctx, x, value, index):
        ctx.index, _ = parse_index(index, x.shape)
        out = x.copy()
        out[ctx.index] = value
        mask = xp.zeros(x.shape, bool)
        mask[ctx.index] = True
        ctx.mask = mask
        return out

    def backward(ctx, g):
        need_x, need_v = ctx.needs_input_grad
        return (_ew.where(ctx.mask, xp.zeros((), g.dtype), g) if need_x else None,
                g[ctx.index] if need_v else None)

    examples = staticmethod(lambda r: [((randn(r, 4, 3), randn(r, 3)), dict(index=1)),
                                       ((randn(r, 4, 3), randn(r, 2, 3)), dict(index=np.array([0, 2]))),
                                       ((randn(r, 3, 4), randn(r, 1)), dict(index=(slice(None), slice(1, 3))))])


copy_slices = defop(CopySlices, "copy_slices")
copy = defop(Copy, "copy")
index_put = defop(IndexPut, "index_put")

# the op each in-place method records, and whether it takes the method's operand
_OPS: dict[str, tuple[Any, bool]] = {
    "add": (_ew.add, True), "sub": (_ew.sub, True), "mul": (_ew.mul, True), "div": (_ew.div, True),
    "pow": (_ew.pow, True), "copy": (copy, True), "index_put": (index_put, True), "clamp": (_ew.clamp, False),
}
_UNARY = ("neg", "exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu")

_NO_GRAD_VIEW = ("A view was created in no_grad mode and {} modified inplace with grad mode enabled. Given that "
                 "this use case is ambiguous and error-prone, it is forbidden. Move both the view and the inplace "
                 "either inside the no_grad block (if you don't want the inplace to be tracked) or both outside "
                 "(if you want the inplace to be tracked).")


def refresh(t: Tensor) -> None:
    """Give view ``t`` the history of its base's current one (the base was changed in place in a graph)."""
    view = t._view
    base = view[0]
    if not view[3]:  # made under no_grad: no history to take, and a base in a graph makes it ambiguous
        if base._requires_grad:
            raise RuntimeError(_NO_GRAD_VIEW.format("its base or another view of its base has been"))
        view[2] = base._node
        return
    recording = _grad_state.enabled
    _grad_state.enabled = True  # the view's history is its base's, whatever mode it is used in
    try:
        w = _view_of(base, view[1])
    finally:
        _grad_state.enabled = recording
    _remember(t, t._version[0])
    t._node, t._requires_grad = w._node, w._requires_grad
    view[2] = base._node
    if _function._tape is not None:
        _function._tape.alias(t, w)


def record_inplace(t: Tensor, op: str | None, other: Any, params: dict) -> bool:
    """Record the in-place op ``op`` on ``t`` in the graph; False where nothing needs recording (the caller
    then changes the array). Raises where PyTorch does."""
    view = t._view
    if view is not None and view[2] is not view[0]._node:
        refresh(t)
    needs = t._requires_grad or (isinstance(other, Tensor) and other._requires_grad)
    if view is not None and not view[3]:
        if needs or view[0]._requires_grad:
            raise RuntimeError(_NO_GRAD_VIEW.format("is being"))
        return False
    if not needs:
        return False
    if view is None and t._node is None:
        if t._requires_grad:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation; "
                               "change it under `with deltagrad.no_grad():`")
    elif view is not None and view[0]._node is None and view[0]._requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation; "
                           "change it under `with deltagrad.no_grad():`")
    if op is None or (op not in _OPS and op not in _UNARY):
        raise RuntimeError(f"the in-place operation {op!r} cannot be recorded in the graph; use its out-of-place "
                           "form (`h = f(h)`)")
    if not t.data.flags.writeable:
        raise RuntimeError(f"unsupported operation: more than one element of the written-to tensor (shape "
                           f"{tuple(t.shape)}, an expanded view) refers to a single memory location; clone() it first")
    tape = _function._tape
    if tape is not None:
        _check_capturable(tape, view[0] if view is not None else t, op)
    old = Tensor._make(t.data.copy(), t._node)  # the values before, for the backward rules that read them
    old._requires_grad = t._requires_grad
    if tape is not None:
        tape.alias(old, t)
    new = _apply(op, old, other, params)
    if new.shape != t.shape:
        raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape {list(new.shape)}")
    if new.dtype != t.dtype:
        if not np.can_cast(new.dtype, t.dtype, "same_kind"):
            raise RuntimeError(f"result type {new.dtype} can't be cast to the desired output type {t.dtype}")
        new = cast(new, t.dtype)
    xp.copyto(t.data, new.data)
    if view is None:
        _rebase(t, new, t.data, tape)
    else:
        base = view[0]
        base_old = Tensor._make(base.data, base._node)  # b_old: the base's history up to now, as an input
        base_old._requires_grad, base_old._version = base._requires_grad, base._version
        if tape is not None:
            tape.alias(base_old, base)
        _rebase(base, copy_slices(base_old, new, view[1]), base.data, tape)
        refresh(t)
    return True


def _apply(op: str, old: Tensor, other: Any, params: dict) -> Tensor:
    if op in _UNARY:
        return getattr(_ew, op)(old)
    fn, takes_other = _OPS[op]
    if "alpha" in params:  # add_(y, alpha=a): old + a·y
        return fn(old, _ew.mul(other, params["alpha"]))
    return fn(old, other, **params) if takes_other else fn(old, **params)


def _rebase(t: Tensor, new: Tensor, memory: Any, tape: Any) -> None:
    """``t``'s history becomes ``new``'s node, whose output is now ``t``'s own memory (at a new version)."""
    t._version[0] += 1
    _remember(t, t._version[0])
    node = new._node
    node._out, node._out_version = memory, (t._version, t._version[0])
    t._node, t._requires_grad = node, True
    if tape is not None:
        tape.alias(t, new)


def _remember(t: Tensor, version: int) -> None:
    """Keep ``t``'s current node for the nodes recorded before ``version``, which read t's values there."""
    history = _function._history
    entries = history.get(id(t))
    if entries is None:
        entries = history[id(t)] = []
        weakref.finalize(t, history.pop, id(t), None)
    entries.append((version, t._node))


def _check_capturable(tape: Any, target: Tensor, op: str) -> None:
    """A captured step replays in-place changes as the ops they are recorded as: of the step's own values."""
    from deltagrad.autograd.tape import LIVE, CaptureError

    if op == "index_put":
        raise CaptureError("item assignment inside a captured step cannot be replayed; use where() or an op")
    if tape.source(target)[0] == LIVE:
        raise CaptureError("an in-place change, recorded in the graph, of a tensor made outside the captured step "
                           "cannot be replayed; clone() it inside the step")


def _unary_method(name: str):
    fn = getattr(_ew, name)

    def method(self: Tensor) -> Tensor:
        return self._inplace(lambda a, _, out, casting: xp.copyto(out, fn(a), casting=casting), None, name)

    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"``{name}`` in place (recorded in the graph as PyTorch does)."
    return method


def _install() -> None:
    for name in _UNARY:
        setattr(Tensor, name + "_", _unary_method(name))
    Tensor.negative_ = Tensor.neg_
    _tensor._record_inplace = record_inplace
    _tensor._refresh = _function._refresh = refresh


_install()
