"""``Module``: a layer of the lecture's network, x(l) = f(x(l-1), W(l)), holding its state.

A module holds *state* (its Parameters W(l), its buffers such as BatchNorm's running statistics, and its
sub-modules) and defines ``forward``; the maths lives in ``deltagrad.nn.functional``. Calling the module
runs the forward pass and records it, so ``loss.backward()`` later backpropagates to the input
(dL/dx(l-1)) and to the weights (dL/dW(l)). State is registered by plain attribute assignment, as in
PyTorch: ``self.weight = Parameter(...)``, ``self.fc = Linear(...)``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from deltagrad import backend
from deltagrad.autograd.grad_mode import state as _grad_state
from deltagrad.autograd.tape import replayed
from deltagrad.nn.hooks import BackwardHook, RemovableHandle, add_hook
from deltagrad.nn.parameter import Parameter
from deltagrad.tensor import Tensor


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _addindent(s: str, spaces: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def check_device(device: Any, owner: str) -> None:
    """Layers accept PyTorch's ``device=`` argument; deltagrad computes on the CPU only."""
    if device is not None and str(device).split(":")[0] != "cpu":
        raise ValueError(f"{owner}: deltagrad runs on the CPU; got device={device!r}")


def _shape_str(shape: tuple) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


class Module:
    """Base class of every layer and network.

    Subclasses call ``super().__init__()``, assign their Parameters and sub-modules as attributes, and
    define ``forward``. Call the module (``model(x)``), not ``forward``, so that hooks run.

    >>> class MLP(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = Linear(2, 8), Linear(8, 1)
    ...     def forward(self, x):
    ...         return self.fc2(tanh(self.fc1(x)))
    >>> [name for name, _ in MLP().named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers"] = set()
        d["_modules"] = {}
        d["_forward_pre_hooks"] = {}
        d["_forward_pre_hooks_with_kwargs"] = set()
        d["_forward_hooks"] = {}
        d["_forward_hooks_with_kwargs"] = set()
        d["_backward_hooks"] = {}
        d["_backward_pre_hooks"] = {}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # -- registration by attribute assignment -----------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep="_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(deltagrad.nn.Parameter or None expected)")
            self._store("_parameters", name, None)
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep="_modules")
            self._store("_modules", name, value)
        elif params is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(deltagrad.nn.Module or None expected)")
            self._store("_modules", name, None)
        elif params is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(deltagrad.Tensor or None expected)")
            self._store("_buffers", name, value)
        else:
            object.__setattr__(self, name, value)

    def _store(self, kind: str, name: str, value: Any) -> None:
        """Register ``value`` in the store ``kind`` and mirror it in the instance dict: the stores are the
        registry (what parameters(), state_dict()... walk), the mirror makes ``self.weight`` a plain attribute
        lookup (no ``__getattr__`` call on the forward pass's hot path)."""
        d = self.__dict__
        d[kind][name] = value
        d[name] = value

    def _replace_modules(self, items: Any) -> None:
        """Replace all children at once (containers renumbering after a deletion or insertion)."""
        d = self.__dict__
        for key in d["_modules"]:
            d.pop(key, None)
        d["_modules"] = dict(items)
        d.update(d["_modules"])

    def _forget(self, name: str, keep: str) -> None:
        """Drop ``name`` from every store but ``keep`` (which the new value goes to, in its old place)."""
        d = self.__dict__
        d.pop(name, None)
        for key in ("_parameters", "_buffers", "_modules"):
            if key != keep:
                d[key].pop(name, None)
        d["_non_persistent_buffers"].discard(name)

    def __getattr__(self, name: str) -> Any:
        # only called when ordinary lookup fails; registered entries are mirrored in __dict__, so this is
        # mostly the error path (and a fallback for dicts changed by hand)
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            store = d.get(key)
            if store is not None and name in store:
                return store[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if name in d[key]:
                del d[key][name]
                d.pop(name, None)
                d["_non_persistent_buffers"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def _check_name(self, name: Any, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a Parameter (or ``None``, a declared but absent parameter such as ``bias=False``)."""
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None:
            if not isinstance(param, Parameter):
                raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                                "(deltagrad.nn.Parameter or None required)")
            if not param.is_leaf:
                raise ValueError(f"cannot assign non-leaf Tensor to parameter '{name}'; "
                                 "make it a leaf with Parameter(t.detach())")
        self._store("_parameters", name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not learned (running statistics...). Persistent buffers go in ``state_dict``."""
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(deltagrad.Tensor or None required)")
        self._store("_buffers", name, tensor)
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module (what ``self.name = module`` does), for names that are not identifiers."""
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._store("_modules", name, module)

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` (``''`` is the module itself)."""
        mod: Module = self
        for item in target.split(".") if target else []:
            child = mod._modules.get(item)
            if not isinstance(child, Module):
                raise AttributeError(f"{mod._get_name()} has no submodule `{item}` (looking up {target!r})")
            mod = child
        return mod

    def get_parameter(self, target: str) -> Parameter:
        """The Parameter at dotted path ``target`` (``'0.weight'``)."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        p = mod._parameters.get(name)
        if p is None:
            raise AttributeError(f"{mod._get_name()} has no parameter `{name}` (looking up {target!r})")
        return p

    # -- iteration ----------------------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` for this module and every descendant, depth first (self first, as '')."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool,
                       skip: Callable[[Module, str], bool] | None = None) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, t in getattr(mod, store).items():
                if t is None or (skip is not None and skip(mod, name)):
                    continue
                if remove_duplicate:
                    if id(t) in seen:
                        continue
                    seen.add(id(t))
                yield mod_prefix + ("." if mod_prefix else "") + name, t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs, e.g. ``('0.weight', ...)`` in a Sequential; shared ones once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every Parameter (what an optimizer updates), each once, in registration order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and gradients ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) here and in every child."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be a bool, got {mode!r}")
        self.__dict__["training"] = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    @replayed  # a captured training step (deltagrad.capture) repeats it
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``.grad = None`` (default) or filled with zeros."""
        for p in self.parameters():
            g = p.grad
            if g is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if g._node is not None or not g.data.flags.writeable:
                    g = p.grad = Tensor(np.zeros_like(g.data))
                else:
                    g.zero_()

    # -- conversion -----------------------------------------------------------------------------------------
    def _apply(self, fn: Callable[[np.ndarray], np.ndarray]) -> Module:
        """Replace the arrays of every parameter, gradient and buffer by ``fn(array)``, keeping the Tensor
        objects (so optimizers and saved references stay valid)."""
        for mod in self.modules():
            for t in list(mod._parameters.values()) + list(mod._buffers.values()):
                if t is None:
                    continue
                new = fn(t.data)
                if new is not t.data:
                    t.data = new
                    t._version[0] += 1
                if t.grad is not None:
                    g = fn(t.grad.data)
                    if g is not t.grad.data:
                        t.grad = Tensor(g)
        return self

    def to(self, *args: Any, dtype: Any = None, **kwargs: Any) -> Module:
        """``to(dtype)`` converts floating-point parameters and buffers in place; ``to('cpu')`` is a no-op."""
        for a in args:
            if isinstance(a, str) and a.split(":")[0] == "cpu":
                continue
            if dtype is not None:
                raise TypeError("to() got the dtype twice")
            dtype = a
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        check_device(device, "Module.to")
        if dtype is None:
            return self
        dtype = np.dtype(dtype)
        if not backend.is_floating(dtype):
            raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype}")
        return self._apply(lambda a: a.astype(dtype) if backend.is_floating(a.dtype) and a.dtype != dtype else a)

    def float(self) -> Module:
        """Convert floating-point parameters and buffers to float32, in place."""
        return self.to(backend.float32)

    def double(self) -> Module:
        """Convert floating-point parameters and buffers to float64, in place (as needed for gradcheck)."""
        return self.to(backend.float64)

    def cpu(self) -> Module:
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first) and then on self; e.g. custom initialization."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- state dict -------------------------------------------------------------------------------------------
    def _state_items(self, prefix: str) -> Iterator[tuple[str, Tensor, bool]]:
        """(key, tensor, is_parameter) for what ``state_dict`` saves, in PyTorch's order."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p, True
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                yield prefix + name, b, False
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_items(prefix + name + ".")

    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """An ordered dict ``name -> Tensor`` of parameters and persistent buffers (``'0.weight'``...).

        The tensors are detached and share memory with the module (``keep_vars=True`` gives the
        Parameters themselves). Keys and layouts are PyTorch's for the same architecture.
        """
        out: OrderedDict[str, Tensor] = OrderedDict() if destination is None else destination  # type: ignore
        for key, t, _ in self._state_items(prefix):
            out[key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values (Tensors or NumPy arrays) into the parameters and buffers, in place.

        Each tensor keeps its dtype (values are converted). With ``strict`` a missing or unexpected key is
        an error; a shape mismatch always is. The error names every offending key. Returns the missing and
        unexpected keys.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"expected state_dict to be a dict-like mapping, got {type(state_dict).__name__}")
        expected = list(self._state_items(""))
        expected_keys = {k for k, _, _ in expected}
        missing = [k for k, _, _ in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected_keys]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        copies = []
        for key, t, _ in expected:
            if key not in state_dict:
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                value = value.data
            elif isinstance(value, (np.ndarray, np.generic, int, float, bool)):
                value = np.asarray(value)
            else:
                errors.append(f'while copying the parameter named "{key}", expected a Tensor or array '
                              f"but received {type(value).__name__}")
                continue
            if value.shape != t.data.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {_shape_str(value.shape)} "
                              f"from checkpoint, the shape in current model is {_shape_str(t.data.shape)}.")
                continue
            copies.append((t, value))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(errors))
        for t, value in copies:  # only once everything checked: a failed load changes nothing
            np.copyto(t.data, value, casting="unsafe")
            t._version[0] += 1
        return IncompatibleKeys(missing, unexpected)

    # -- calling and hooks ------------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args)`` before ``forward``; returning a value replaces the positional inputs.

        With ``with_kwargs``: ``hook(module, args, kwargs)`` returning ``None`` or ``(args, kwargs)``.
        """
        handle = add_hook(self._forward_pre_hooks, hook, prepend)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` after ``forward`` (the forward signal); a returned value replaces
        the output. With ``with_kwargs``: ``hook(module, args, kwargs, output)``."""
        handle = add_hook(self._forward_hooks, hook, prepend)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        return handle

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` once this module's part of backprop is done.

        ``grad_output`` holds dL/d(output) (the backward signal arriving at the module), ``grad_input``
        dL/d(input) for each positional input (``None`` where it needs none). Returning a tuple replaces
        ``grad_input``. Gradients of parameters are not included: use ``Tensor.register_hook`` for those.
        """
        return add_hook(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output)`` when dL/d(output) is complete, before backprop into the module;
        returning a tuple replaces ``grad_output``."""
        return add_hook(self._backward_pre_hooks, hook, prepend)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if not (d["_forward_pre_hooks"] or d["_forward_hooks"] or d["_backward_hooks"] or d["_backward_pre_hooks"]):
            return self.forward(*args, **kwargs)
        for hid, hook in list(d["_forward_pre_hooks"].items()):
            if hid in d["_forward_pre_hooks_with_kwargs"]:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, "
                                           f"new_kwargs), but got {res!r}")
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        bw = None
        if (d["_backward_hooks"] or d["_backward_pre_hooks"]) and _grad_state.enabled:
            bw = BackwardHook(self, list(d["_backward_hooks"].values()), list(d["_backward_pre_hooks"].values()))
            args = bw.setup_input_hook(args)
        result = self.forward(*args, **kwargs)
        for hid, hook in list(d["_forward_hooks"].items()):
            res = hook(self, args, kwargs, result) if hid in d["_forward_hooks_with_kwargs"] else \
                hook(self, args, result)
            if res is not None:
                result = res
        if bw is not None:
            result = bw.setup_output_hook(result)
        return result

    # -- printing -----------------------------------------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The layer's settings shown inside its ``repr`` (``in_features=2, out_features=2, bias=True``)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(mod), 2) for key, mod in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            body = extra_lines[0] if len(extra_lines) == 1 and not child_lines else \
                "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"
