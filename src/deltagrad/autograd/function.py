"""``Function``: the base of every differentiable operation, and the op table.

An op is a ``Function`` subclass with ``forward(ctx, *inputs, *params)`` computing on arrays and
``backward(ctx, grad)`` returning one gradient per input (``None`` where none is needed). ``inputs`` names the
operands (tensors, arrays or numbers) that lead forward's arguments; every argument after them is a parameter
(a dim, a shape, a reduction), by position or by keyword alike, and never taken for an input.
``backward`` reads ``ctx.args`` (the inputs) and ``ctx.result`` (the output) and writes its rule with
operators and op functions, which work on arrays and on Tensors alike: in an ordinary backward they are
arrays and the rule runs at NumPy speed; under ``create_graph=True`` they are Tensors and the rule itself
is recorded, so gradients can be differentiated again. Each rule is written once and serves both.

``defop(Cls, method=...)`` registers an op in ``OPS`` (which the test suite walks and gradchecks) and
returns its function; the function returns a Tensor when any argument is a Tensor, else a plain array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deltagrad.autograd.grad_mode import state as _grad_state
from deltagrad.backend import quiet_floating_point, restore_floating_point, xp
from deltagrad.tensor import Tensor

OPS: dict[str, type[Function]] = {}
_ALL = 1 << 62  # an op's number of inputs when every positional argument is one


class Function:
    """Base class of differentiable operations (users may subclass it for their own ops).

    Class attributes:
      ``is_view``: the output shares memory with the first input, so in-place changes are seen by both.
      ``differentiable_twice``: False where backward uses non-differentiable steps (gradgradcheck skips it).
      ``keeps_dtype``: float32 in gives float32 out (every op but dtype conversion).
      ``differentiable``: False for ops whose outputs never carry a gradient (comparisons, arg-max).
      ``examples``: ``(rng) -> list of (args, kwargs)`` sample inputs in float64 for the op-table tests.
      ``inputs``: the names of the operands that lead forward's positional arguments (``("a", "b")`` for
        ``add``; ``("input", "weight", "bias")`` for ``linear``, whose bias may also be passed by name); the
        arguments after them are parameters. None: every positional argument is an input (variadic ops such
        as ``cat``, and user subclasses that do not say).
      ``reads``: for each input, the inputs whose values its gradient reads; ``ctx.args`` refuses to run a
        backward whose needed values were changed in place since forward. None: every gradient reads every
        input. (``mul``: ``((1,), (0,))``, the gradient of a reads b and that of b reads a.)
    """

    is_view = False
    differentiable_twice = True
    keeps_dtype = True
    differentiable = True
    examples: Callable[[Any], list] | None = None
    inputs: tuple[str, ...] | None = None
    reads: tuple[tuple[int, ...], ...] | None = None
    copied = False  # set by a view op whose NumPy result turned out a copy (reshape of a non-contiguous array)
    _n_inputs = _ALL
    _hooks: list | None = None
    _freed = False  # set once backward has released what forward saved
    # what a context replayed by a captured step (autograd/tape.py) holds: arrays only, no graph to check
    _inputs: tuple = ()
    _versions: tuple = ()
    _out_version = ([0], 0)
    _create_graph = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._n_inputs = _ALL if cls.inputs is None else len(cls.inputs)

    # -- the two halves each op defines ----------------------------------------------------------------
    def forward(ctx, *args: Any, **params: Any) -> Any:
        raise NotImplementedError

    def backward(ctx, grad: Any) -> Any:
        raise NotImplementedError

    # -- recording ---------------------------------------------------------------------------------------
    @classmethod
    def apply(cls, *args: Any, **params: Any) -> Any:
        """Run the op: a Tensor out (recorded when an input requires grad) if any input is a Tensor."""
        if params and cls.inputs and not params.keys().isdisjoint(cls.inputs):
            args, params = bind_inputs(cls, args, params)
        return _record(cls, args, params)

    # -- what backward reads -----------------------------------------------------------------------------
    @property
    def args(self) -> tuple:
        """The inputs: arrays in an ordinary backward, Tensors under ``create_graph``."""
        if self._freed:
            self._check_alive()
        for a, v in zip(self._inputs, self._versions):
            if isinstance(a, Tensor) and a._version[0] != v:
                self._check_versions()
                break
        return self._inputs if self._create_graph else self._arrays

    def _check_versions(self) -> None:
        """Raise if an input that a needed gradient reads (see ``reads``) was changed in place since forward."""
        reads = type(self).reads
        for k, (a, v) in enumerate(zip(self._inputs, self._versions)):
            if not isinstance(a, Tensor) or a._version[0] == v:
                continue
            if reads is None or any(need and k in r for need, r in zip(self.needs_input_grad, reads)):
                raise RuntimeError(_modified(f"input {k} of {self!r}", a, v))

    @property
    def result(self) -> Any:
        """The output: an array in an ordinary backward, a Tensor under ``create_graph``."""
        if self._freed:
            self._check_alive()
        cell, v = self._out_version
        if cell[0] != v:
            raise RuntimeError(_modified(f"the output of {self!r}", None, v, cell[0]))
        return Tensor._make(self._out, self) if self._create_graph else self._out

    @property
    def create_graph(self) -> bool:
        """True while this backward is itself being recorded (``create_graph=True``): rules that take an
        array shortcut (a value saved by forward) must compute from ``ctx.args`` instead."""
        return self._create_graph

    def _check_alive(self) -> None:
        if self._freed:
            raise RuntimeError(
                "trying to backward through the graph a second time (or to read values freed after "
                "backward); pass retain_graph=True to the first backward() if you need to"
            )

    def _release(self) -> None:
        """Free what forward saved once backward has used it; the graph cannot be walked again."""
        self.__dict__.clear()  # _inputs falls back to the class's ()
        self._freed = True

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


def _modified(what: str, t: Tensor | None, expected: int, version: int | None = None) -> str:
    """PyTorch's message for a value that backward needs and that an in-place operation changed."""
    if t is not None:
        what += f" (a {t.data.dtype} tensor of shape {tuple(t.data.shape)})"
        version = t._version[0]
    return (f"one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"{what} is at version {version}; expected version {expected} instead. Hint: change it after "
            "backward(), or clone() it first and change the copy")


def bind_inputs(cls: type[Function], args: tuple, params: dict) -> tuple[tuple, dict]:
    """Inputs passed by name (``linear(x, w, bias=b)``) moved to their places among the positional inputs."""
    names = cls.inputs or ()
    params = dict(params)
    args = list(args)
    for k, name in enumerate(names):
        if name in params:
            if k < len(args):
                raise TypeError(f"{cls.__name__}: got multiple values for argument {name!r}")
            args += [None] * (k - len(args))  # an optional input before it that was left out
            args.append(params.pop(name))
    return tuple(args), params


def _record(cls: type[Function], args: tuple, params: dict) -> Any:
    """Run ``cls.forward`` on the arrays inside ``args``; wrap and record the result when grad is needed.

    The arguments after the op's ``inputs`` are parameters: passed on to forward as they are, never recorded."""
    n = cls._n_inputs
    if len(args) > n:
        args, extra = args[:n], args[n:]
    else:
        extra = ()
    arrays = []
    needs = []      # what backward is told (and what versions it checks), gathered in the same pass
    versions = []
    tensors = record = False
    if _history:  # some tensor was changed in place in a graph: a view of it takes its new history first
        for a in args:
            if isinstance(a, Tensor) and a._view is not None and a._view[2] is not a._view[0]._node:
                _refresh(a)
    for a in args:
        if isinstance(a, Tensor):
            tensors = True
            arrays.append(a.data)
            versions.append(a._version[0])
            if a._requires_grad:
                record = True
                needs.append(True)
            else:
                needs.append(False)
        else:
            arrays.append(a)
            needs.append(False)
            versions.append(0)
    ctx = _new(cls)
    token = quiet_floating_point()
    if _tape is not None:  # in-place updates inside forward (running statistics) are the forward's own
        _tape.suspended += 1
    try:  # (an empty **params costs 0.2 µs a call)
        out = cls.forward(ctx, *arrays, *extra, **params) if params or extra else cls.forward(ctx, *arrays)
    finally:
        restore_floating_point(token)
        if _tape is not None:
            _tape.suspended -= 1
    if not tensors:
        return out
    if not record or not _grad_state.enabled or not cls.differentiable:
        result = _make(out, None)
        if cls.is_view and not ctx.copied:
            _link_view(result, cls, args, extra, params)
    else:
        ctx._inputs = args
        ctx._arrays = tuple(arrays)
        ctx.needs_input_grad = needs
        ctx._versions = versions
        ctx._out = out
        result = _make(out, ctx)
        if cls.is_view and not ctx.copied:
            _link_view(result, cls, args, extra, params)
        ctx._out_version = (result._version, result._version[0])
    if _tape is not None:
        _tape.op(cls, args, extra, params, result)
    return result


def _link_view(result: Tensor, cls: type[Function], args: tuple, extra: tuple, params: dict) -> None:
    """A view shares its input's memory: one version counter, and the way back to the base (``Tensor._view``)."""
    src = args[0]
    result._version = src._version
    step = (cls, args[1:] + extra, params)
    view = src._view
    grad = _grad_state.enabled
    if view is None:
        result._view = [src, (step,), src._node, grad]
    else:
        base = view[0]
        result._view = [base, view[1] + (step,), base._node, grad and view[3]]


_new = object.__new__
_tape: Any = None  # the tape while ``deltagrad.capture`` records a step (autograd/tape.py)
_make = Tensor._make
_refresh: Any = None  # ops/inplace.py: a view takes its history from its base's new one

# id(tensor) -> [(version, node)]: for a tensor whose history an in-place op replaced, the node that made its
# values before each version at which that happened. A node recorded before the change reads its input there.
_history: dict[int, list] = {}


def node_at(t: Tensor, version: int) -> Any:
    """The node that made ``t``'s values at ``version`` (``t._node`` unless an in-place op replaced it since)."""
    for v, node in _history.get(id(t), ()):
        if version < v:
            return node
    return t._node


def defop(cls: type[Function], name: str | None = None, method: str | tuple[str, ...] | None = None):
    """Register ``cls`` in the op table and return its function; ``method`` also makes it a Tensor method."""
    name = name or cls.__name__.lower()
    if name in OPS and OPS[name] is not cls:
        raise ValueError(f"op {name!r} is already registered by {OPS[name].__qualname__}")
    OPS[name] = cls

    def fn(*args: Any, **params: Any) -> Any:
        if params and cls.inputs and not params.keys().isdisjoint(cls.inputs):
            args, params = bind_inputs(cls, args, params)
        for a in args:
            if isinstance(a, Tensor):
                return _record(cls, args, params)
        # arrays only (a backward rule in an ordinary backward, which the engine already quiets): no graph
        return cls.forward(_new(cls), *args, **params) if params else cls.forward(_new(cls), *args)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = cls.__doc__
    fn.op = cls
    for m in (method,) if isinstance(method, str) else method or ():
        setattr(Tensor, m, fn)
    return fn


def is_tensor(x: Any) -> bool:
    return isinstance(x, Tensor)


# ---- the ops the engine itself needs: summing a broadcast gradient back (and its adjoint), changing dtype --


class SumTo(Function):
    """y = x summed over the axes that broadcasting added or stretched, so that y.shape == shape."""

    inputs = ("x",)

    def forward(ctx, x, shape):
        ctx.shape_in = x.shape
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
        )
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(shape) if lead or y.shape != tuple(shape) else y

    def backward(ctx, g):  # dx = g broadcast back
        return broadcast_to(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((r.standard_normal((2, 3, 4)), (3, 1)), {})])


class BroadcastTo(Function):
    """y = x repeated along new or size-1 axes to ``shape`` (a read-only view)."""

    inputs = ("x",)

    is_view = True

    def forward(ctx, x, shape):
        ctx.shape_in = x.shape
        return x if x.shape == tuple(shape) else xp.broadcast_to(x, shape)

    def backward(ctx, g):  # dx = Σ over the broadcast axes
        return sum_to(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((r.standard_normal((3, 1)), (2, 3, 4)), {})])


class Cast(Function):
    """y = x converted to ``dtype``; the gradient is converted back."""

    inputs = ("x",)

    keeps_dtype = False

    def forward(ctx, x, dtype):
        ctx.dtype_in = x.dtype
        return x.astype(dtype)

    def backward(ctx, g):
        return cast(g, ctx.dtype_in)

    examples = staticmethod(lambda r: [((r.standard_normal((2, 3)), "float64"), {})])


sum_to = defop(SumTo, "sum_to")
broadcast_to = defop(BroadcastTo, "broadcast_to", method="broadcast_to")
cast = defop(Cast, "cast")
