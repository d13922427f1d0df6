"""``Optimizer``: the base of every optimizer — parameter groups, per-parameter state, step hooks, state dicts.

An optimizer holds ``param_groups`` (a list of dicts: ``{'params': [Tensor, ...], 'lr': ..., ...}``, every
option filled from ``defaults`` where a group does not set it) and ``state`` (a dict from parameter to that
parameter's buffers). ``step()`` changes each parameter's ``.data`` in place, outside the graph, from its
``.grad``; parameters whose ``.grad`` is None are skipped. Parameters and state keep their dtype.

The layout of ``state_dict()`` is PyTorch's::

    {'state': {0: {'momentum_buffer': Tensor, ...}, 1: {...}},
     'param_groups': [{'lr': 0.01, 'momentum': 0.9, ..., 'params': [0, 1]}]}

(parameters are numbered in the order the groups list them). To store it without pickle, split it with
``deltagrad.optim.optimizer_state_to_flat`` into arrays (for safetensors) and JSON.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from deltagrad.autograd.grad_mode import enable_grad
from deltagrad.autograd.grad_mode import state as _grad_state
from deltagrad.autograd.tape import replayed
from deltagrad.tensor import Tensor

Params = Iterable[Tensor] | Iterable[dict[str, Any]]


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods: ``handle.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _hooked_step(step: Callable) -> Callable:
    """Wrap a subclass's ``step`` so that the step pre- and post-hooks run around it."""

    @functools.wraps(step)
    def wrapper(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_in_step", False):  # a subclass's step calling super().step(): hooks run once
            return step(self, *args, **kwargs)
        if self._step_pre_hooks:
            for hook in list(self._step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"a step pre-hook must return None or (args, kwargs), got {result!r}")
                    args, kwargs = result
        self._in_step = True
        recording = _grad_state.enabled
        _grad_state.enabled = False  # updates are never recorded; a closure turns recording back on for itself
        try:
            out = step(self, *args, **kwargs)
        finally:
            _grad_state.enabled = recording
            self._in_step = False
        self._opt_called = True  # lets a learning-rate scheduler warn when it is stepped first
        if self._step_post_hooks:
            for hook in list(self._step_post_hooks.values()):
                hook(self, args, kwargs)
        return out

    wrapper._hooked = True  # type: ignore[attr-defined]
    return wrapper


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of optimizers (``torch.optim.Optimizer``).

    ``params``: an iterable of Tensors, or of dicts ``{'params': [...], <option>: value}`` giving each group
    its own options. ``defaults``: the options of a group that does not set them.

    >>> opt = deltagrad.optim.SGD([{'params': [w]}, {'params': [b], 'lr': 0.1}], lr=0.01, momentum=0.9)
    >>> opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            # replayed: a captured training step (deltagrad.capture) repeats the call, hooks included
            cls.step = replayed(_hooked_step(step))

    def __init__(self, params: Params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._step_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._step_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError("params given to the optimizer should be an iterable of Tensors or dicts, "
                            "not a Tensor; pass [tensor]")
        if isinstance(params, set):
            raise TypeError("optimizer parameters must be an ordered collection (a list), not a set: "
                            "the order of a set changes between runs")
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    # -- parameter groups ----------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with its own options) to ``param_groups``: e.g. layers unfrozen later."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, not {type(param_group).__name__}")
        param_group = dict(param_group)
        params = param_group.get("params")
        if params is None:
            raise ValueError("param_group needs a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters must be an ordered collection (a list), not a set: "
                            "the order of a set changes between runs")
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with or without names; some names are missing")
            param_group["param_names"] = names
            params = [p[1] for p in params]
        for k, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"the optimizer can only optimize Tensors, but params[{k}] is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (params[{k}]); use a leaf or detach() it")
            if p.dtype.kind != "f":
                raise TypeError(f"the optimizer can only optimize floating-point Tensors, params[{k}] is {p.dtype}")
        param_group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        self._check_group(param_group)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters", UserWarning,
                          stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyper-parameters (subclasses check their own; ``lr`` is checked here)."""
        check_nonneg("lr", group.get("lr", 0.0))

    # -- gradients and steps -------------------------------------------------------------------------------
    @replayed
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad``: set it to None (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad = p.grad.detach()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update the parameters once; ``closure`` re-evaluates the loss (and gradients) where needed."""
        raise NotImplementedError

    @staticmethod
    def _eval_closure(closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # -- hooks -----------------------------------------------------------------------------------------------
    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` before each ``step``; it may return new ``(args, kwargs)``.

        Data-parallel training averages the gradients of all workers in such a hook.
        """
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` after each ``step``."""
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    # -- state dicts -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}`` (PyTorch's layout).

        The buffers in ``state`` are the optimizer's own (not copies); ``load_state_dict`` copies them.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)] if isinstance(p, Tensor) else p: s for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from ``state_dict()``: groups must match in number and size; buffers are copied and
        cast to each parameter's dtype (``step`` counters are kept as they are)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("an optimizer state dict needs the keys 'state' and 'param_groups'")
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has {len(s['params'])} parameters, "
                                 f"the optimizer's has {len(g['params'])}")
        id_map = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                          chain.from_iterable(g["params"] for g in self.param_groups)))
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = _cast_state(id_map[k], v)
            else:
                state[k] = copy.deepcopy(v)
        for g, s in zip(self.param_groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
        self.state = state
        self.param_groups = saved_groups

    # -- helpers for subclasses ----------------------------------------------------------------------------
    def _params_with_grad(self, group: dict[str, Any]) -> list[Tensor]:
        return [p for p in group["params"] if p.grad is not None]


def _cast_state(param: Tensor, value: Any, key: Any = None) -> Any:
    """Deep-copy a loaded state value; arrays become Tensors of the parameter's dtype (except ``step``)."""
    if isinstance(value, Tensor | np.ndarray):
        data = np.array(value.data if isinstance(value, Tensor) else value)  # a copy
        if key != "step" and data.dtype.kind == "f" and data.dtype != param.dtype:
            data = data.astype(param.dtype)
        return Tensor(data)
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cast_state(param, v) for v in value)
    return copy.deepcopy(value)


def new_buffer(p: Tensor, fill: float = 0.0) -> Tensor:
    """A state buffer shaped and typed like parameter ``p``."""
    return Tensor(np.full(p.shape, fill, dtype=p.dtype))


def grad_of(p: Tensor, maximize: bool = False) -> np.ndarray:
    """The array of ``p.grad`` (negated when maximizing)."""
    g = p.grad.data
    if g.dtype != p.dtype:
        g = g.astype(p.dtype)
    return -g if maximize else g


def check_nonneg(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a real number ≥ 0 (NaN is refused)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not v >= 0.0:
        raise ValueError(f"Invalid {name}: {value} (must be a number >= 0)")


def check_beta(name: str, value: Any) -> None:
    """Raise ValueError unless 0 ≤ value < 1."""
    check_nonneg(name, value)
    if not float(value) < 1.0:
        raise ValueError(f"Invalid {name}: {value} (must be in [0, 1))")


def update_param(p: Tensor, step: np.ndarray) -> None:
    """``p.data += step`` outside the graph, keeping dtype, bumping the version counter."""
    np.add(p.data, step, out=p.data, casting="same_kind")
    p._version[0] += 1
