"""``Tensor``: an array, its gradient, whether it requires one, and the node of the graph that made it.

Arithmetic and the other differentiable methods are attached by the op files (``deltagrad/ops``) when they
register their ops; this file holds what is not an op: construction, conversion, backward, hooks and
in-place updates. An in-place update outside the graph changes the array and bumps the version counter (which
views share with their base); one on a tensor in the graph is recorded by ``ops/inplace.py``, as PyTorch does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deltagrad import backend
from deltagrad.autograd.grad_mode import state as _grad_state


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    >>> x = deltagrad.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    tensor([2., 4.])
    """

    # _version: [count], shared by a view and its base; _view: None, or for a view [base, the view ops from the
    # base (cls, args, params), base._node when this view's history was made, made with grad on]
    __slots__ = ("data", "grad", "_requires_grad", "_node", "_version", "_view", "_hooks", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator
    __hash__ = object.__hash__  # == is elementwise, identity is the hash (as in PyTorch)

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        self.data = backend.as_array(data, dtype)
        self.grad: Tensor | None = None
        self._node = None
        self._version = [0]
        self._view: list | None = None
        self._hooks: list | None = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    @staticmethod
    def _make(data: Any, node: Any) -> Tensor:
        """Wrap an op's output array (no copy, no checks: the hot path)."""
        t = object.__new__(Tensor)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t._node = node
        t._requires_grad = node is not None
        t._version = [0]
        t._view = None
        t._hooks = None
        return t

    # -- gradient bookkeeping ------------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        if self._view is not None:
            self._fresh()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and not backend.is_floating(self.data.dtype):
            raise RuntimeError(f"only floating-point tensors can require gradients, not dtype {self.data.dtype}")
        if not value and self._node is not None:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; use detach()")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        if self._view is not None:
            self._fresh()
        return self._node is None

    @property
    def grad_fn(self) -> Any:
        if self._view is not None:
            self._fresh()
        return self._node

    def _fresh(self) -> None:
        """A view whose base was changed in place in a graph takes its history from the base's new one."""
        view = self._view
        if view[2] is not view[0]._node:
            _refresh(self)

    def backward(
        self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (weighted by ``gradient`` if given)."""
        from deltagrad.autograd.engine import backward

        if isinstance(inputs, Tensor):
            inputs = [inputs]
        backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Callable[[], None]:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        owner = self._node if self._node is not None else self
        if owner._hooks is None:
            owner._hooks = []
        owner._hooks.append(hook)
        return lambda: owner._hooks.remove(hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if self._node is None:
            return

        def keep(g: Tensor) -> None:
            self.grad = g if self.grad is None else self.grad + g

        self.register_hook(keep)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory and the in-place version counter)."""
        t = Tensor._make(self.data, None)
        t._version = self._version
        if _tape is not None:  # in a captured step the detached value is still this step's value
            _tape.alias(t, self)
        return t

    def detach_(self) -> Tensor:
        if self._view is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead")
        self._node = None
        self._requires_grad = False
        return self

    # -- conversion ------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def device(self) -> str:
        return "cpu"

    def size(self, dim: int | None = None) -> Any:
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numpy(self) -> np.ndarray:
        if self._requires_grad:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return backend.to_numpy(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = backend.to_numpy(self.data)
        return a if dtype is None else a.astype(dtype)

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, not shape {self.data.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.data.shape} is ambiguous")
        return bool(self.data)

    def to(self, dtype: Any) -> Tensor:
        from deltagrad.autograd.function import cast

        dtype = np.dtype(dtype)
        return self if dtype == self.data.dtype else cast(self, dtype)

    def float(self) -> Tensor:
        return self.to(backend.float32)

    def double(self) -> Tensor:
        return self.to(backend.float64)

    def long(self) -> Tensor:
        return self.to(backend.int64)

    def int(self) -> Tensor:
        return self.to(backend.int32)

    def bool(self) -> Tensor:
        return self.to(backend.bool_)

    type = to

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.data.ndim)))

    @property
    def mT(self) -> Tensor:
        return self.transpose(-2, -1)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (backend.float32, backend.int64, backend.bool_):
            extra += f", dtype={self.data.dtype}"
        if self._node is not None:
            extra += f", grad_fn={self._node!r}"
        elif self._requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # -- in-place updates ----------------------------------------------------------------------------------
    def _inplace(self, ufunc: Any, other: Any, op: str | None = None, params: dict | None = None) -> Tensor:
        """``ufunc(self, other, out=self)``; recorded as the op ``op(self, other, **params)`` where the graph
        needs it (``ops/inplace.py``: a tensor in the graph, or ``other`` requiring grad, or a view)."""
        if _grad_state.enabled and (self._requires_grad or self._view is not None
                                    or (isinstance(other, Tensor) and other._requires_grad)):
            if _record_inplace(self, op, other, params or {}):
                return self
        if _tape is not None:  # a captured step repeats in-place updates of state (counters, buffers)
            _tape.inplace(self, ufunc, other)
        other = other.data if isinstance(other, Tensor) else other
        token = backend.quiet_floating_point()
        try:
            ufunc(self.data, other, out=self.data, casting="same_kind")
        except TypeError as e:  # NumPy's casting error, in PyTorch's words
            raise RuntimeError(f"the result of {op or 'the in-place operation'} can't be cast to the desired "
                               f"output type {self.data.dtype}: {e}") from None
        finally:
            backend.restore_floating_point(token)
        self._version[0] += 1
        return self

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        if alpha != 1:
            return self._inplace(_scaled(np.add, alpha), other, "add", {"alpha": alpha})
        return self._inplace(np.add, other, "add")

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        if alpha != 1:
            return self._inplace(_scaled(np.subtract, alpha), other, "sub", {"alpha": alpha})
        return self._inplace(np.subtract, other, "sub")

    def mul_(self, other: Any) -> Tensor:
        return self._inplace(np.multiply, other, "mul")

    def div_(self, other: Any) -> Tensor:
        return self._inplace(np.divide, other, "div")

    def pow_(self, exponent: Any) -> Tensor:
        return self._inplace(np.power, exponent, "pow")

    def copy_(self, src: Any) -> Tensor:
        return self._inplace(_copyto, src, "copy")

    def zero_(self) -> Tensor:
        return self._inplace(_copyto, 0, "copy")

    def fill_(self, value: Any) -> Tensor:
        return self.copy_(value)

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        return self._inplace(lambda a, _, out, casting: np.clip(a, min, max, out=out), None, "clamp",
                             {"min": min, "max": max})

    clip_ = clamp_

    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    def __ipow__(self, other: Any) -> Tensor:
        return self.pow_(other)

    def __setitem__(self, index: Any, value: Any) -> None:
        if _grad_state.enabled and (self._requires_grad or self._view is not None
                                    or (isinstance(value, Tensor) and value._requires_grad)):
            if _record_inplace(self, "index_put", value, {"index": index}):
                return
        if _tape is not None:
            _tape.inplace(self, None, value)
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        self.data[index] = _data(value)
        self._version[0] += 1


_tape: Any = None  # the tape while ``deltagrad.capture`` records a step (autograd/tape.py)
_record_inplace: Any = None  # ops/inplace.py: records an in-place op in the graph, or says none is needed
_refresh: Any = None  # ops/inplace.py: a view takes its history from its base's new one


def _copyto(a: Any, b: Any, out: Any, casting: str) -> None:
    np.copyto(out, b, casting="unsafe")  # as PyTorch's copy_: any dtype converts


def _scaled(ufunc: Any, alpha: float) -> Callable:
    return lambda a, b, out, casting: ufunc(a, np.multiply(b, alpha), out=out, casting=casting)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x
