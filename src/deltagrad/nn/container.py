"""Containers: ``Sequential`` (the lecture's f_L(... f_2(f_1(x)))), ``ModuleList``, ``ModuleDict``,
``ParameterList`` and ``ParameterDict``.

Children are registered under their index (``'0'``, ``'1'``...) or key, so parameter names read
``0.weight``, ``1.bias``, exactly as in PyTorch.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from deltagrad.nn.module import Module, _addindent
from deltagrad.nn.parameter import Parameter
from deltagrad.tensor import Tensor


def _index(idx: Any, n: int, what: str) -> int:
    idx = operator.index(idx)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for a {what} of length {n}")
    return idx % n


class Sequential(Module):
    """Modules applied one after the other: x(l) = f_l(x(l-1)), the output of each feeding the next.

    ``Sequential(m0, m1, ...)`` names the children ``'0'``, ``'1'``...; ``Sequential(OrderedDict(...))``
    uses the given names. Supports indexing (an int gives the module, a slice a new Sequential), ``len``,
    iteration, ``append``, ``insert``, ``extend`` and ``del``.

    >>> model = Sequential(Linear(2, 4), ReLU(), Linear(4, 1))
    >>> model(deltagrad.randn(8, 2)).shape
    (8, 1)
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *args: Module) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input

    def __getitem__(self, idx: int | slice) -> Any:
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return type(self)(OrderedDict(items[idx]))
        return items[_index(idx, len(items), "Sequential")][1]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[_index(idx, len(self._modules), "Sequential")]
        setattr(self, key, module)

    def __delitem__(self, idx: int | slice) -> None:
        keys = list(self._modules)
        if isinstance(idx, slice):
            for key in keys[idx]:
                delattr(self, key)
        else:
            delattr(self, keys[_index(idx, len(keys), "Sequential")])
        # keep the numbering contiguous, as PyTorch does
        self._replace_modules((str(i), m) for i, m in enumerate(self._modules.values()))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise TypeError(f"module should be of type Module, got {type(module).__name__}")
        n = len(self._modules)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for insertion into a Sequential of length {n}")
        if index < 0:
            index += n
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._replace_modules((str(i), m) for i, m in enumerate(mods))
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        for m in modules:
            self.append(m)
        return self


class _IndexedModule(Module):
    """What ModuleList and ParameterList share: a list interface over one of the Module's stores
    (``_registry``), entries registered under their index ``'0'``, ``'1'``..."""

    _registry = ""

    def __init__(self, entries: Iterable[Any] | None = None) -> None:
        super().__init__()
        if entries is not None:
            self.extend(entries)

    def _entries(self) -> dict[str, Any]:
        return self.__dict__[self._registry]

    def __getitem__(self, idx: int | slice) -> Any:
        entries = list(self._entries().values())
        if isinstance(idx, slice):
            return type(self)(entries[idx])
        return entries[_index(idx, len(entries), type(self).__name__)]

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._entries().values())

    def __iadd__(self, entries: Iterable[Any]) -> Any:
        return self.extend(entries)

    def extend(self, entries: Iterable[Any]) -> Any:
        for entry in entries:
            self.append(entry)
        return self

    def append(self, entry: Any) -> Any:
        raise NotImplementedError


class ModuleList(_IndexedModule):
    """A list of modules, registered so that their parameters are found (it has no ``forward``).

    >>> layers = ModuleList([Linear(4, 4) for _ in range(3)])
    >>> len(layers), [n for n, _ in layers.named_parameters()][:2]
    (3, ['0.weight', '0.bias'])
    """

    _registry = "_modules"

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, str(_index(idx, len(self), "ModuleList")), module)

    def __delitem__(self, idx: int | slice) -> None:
        keys = list(self._modules)
        for key in keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(keys), "ModuleList")]]:
            delattr(self, key)
        self._replace_modules((str(i), m) for i, m in enumerate(self._modules.values()))

    def __repr__(self) -> str:
        # runs of identical children print once, as PyTorch does: "(0-2): 3 x Linear(...)"
        runs: list[list[Any]] = []  # [first index, last index, repr]
        for i, m in enumerate(self):
            r = repr(m)
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        if not runs:
            return f"{self._get_name()}()"
        lines = [_addindent(f"({a}): {r}" if a == b else f"({a}-{b}): {b - a + 1} x {r}", 2) for a, b, r in runs]
        return f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(list(self) + list(other))

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._replace_modules((str(i), m) for i, m in enumerate(mods))

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError("ModuleList.extend should be called with an iterable of modules, "
                            f"got {type(modules).__name__}")
        return super().extend(modules)


class _KeyedModule(Module):
    """What ModuleDict and ParameterDict share: a dict interface over one of the Module's stores (``_registry``,
    the name of ``_modules`` or ``_parameters``), entries registered under their keys, insertion order kept."""

    _registry = ""
    _entry = ""  # what an entry is called, for messages

    def __init__(self, entries: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        super().__init__()
        if entries is not None:
            self.update(entries)

    def _entries(self) -> dict[str, Any]:
        return self.__dict__[self._registry]

    def __getitem__(self, key: str) -> Any:
        return self._entries()[key]

    def __delitem__(self, key: str) -> None:
        if key not in self._entries():
            raise KeyError(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __contains__(self, key: object) -> bool:
        return key in self._entries()

    def keys(self) -> Iterable[str]:
        return self._entries().keys()

    def values(self) -> Iterable[Any]:
        return self._entries().values()

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._entries().items()

    def get(self, key: str, default: Any = None) -> Any:
        return self._entries().get(key, default)

    def pop(self, key: str) -> Any:
        v = self[key]
        del self[key]
        return v

    def clear(self) -> None:
        for key in list(self._entries()):
            del self[key]

    def update(self, entries: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        items = entries.items() if isinstance(entries, Mapping) else entries
        for j, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"{type(self).__name__} update sequence element #{j} should be a "
                                 f"(key, {self._entry}) pair")
            self[item[0]] = item[1]


class ModuleDict(_KeyedModule):
    """A dict of modules, registered under their keys (insertion order kept).

    >>> heads = ModuleDict({"cls": Linear(8, 10), "box": Linear(8, 4)})
    >>> heads["box"].out_features
    4
    """

    _registry, _entry = "_modules", "module"

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)


def _as_parameter(value: Any, what: str) -> Parameter:
    """A Parameter as is; any other Tensor made one (sharing its memory), as PyTorch's containers do."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value.detach())
    raise TypeError(f"{what} holds Parameters (or Tensors, made Parameters), got {type(value).__name__}")


class ParameterList(_IndexedModule):
    """A list of parameters, registered under their index so that ``parameters()`` and ``state_dict()`` see them
    (``'0'``, ``'1'``...). Tensors that are not yet Parameters become Parameters, as in PyTorch.

    >>> weights = ParameterList([Parameter(deltagrad.randn(4, 4)) for _ in range(3)])
    >>> len(weights), [n for n, _ in weights.named_parameters()]
    (3, ['0', '1', '2'])
    """

    _registry = "_parameters"

    def __setitem__(self, idx: int, value: Any) -> None:
        setattr(self, str(_index(idx, len(self), "ParameterList")), _as_parameter(value, "ParameterList"))

    def append(self, value: Any) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList"))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        if isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable of parameters, got a Tensor")
        return super().extend(values)

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                         for i, p in enumerate(self))


class ParameterDict(_KeyedModule):
    """A dict of parameters, registered under their keys (insertion order kept); Tensors become Parameters.

    >>> scales = ParameterDict({"gamma": Parameter(deltagrad.ones(3)), "beta": Parameter(deltagrad.zeros(3))})
    >>> sorted(dict(scales.named_parameters()))
    ['beta', 'gamma']
    """

    _registry, _entry = "_parameters", "parameter"

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_name(key, "parameter")
        setattr(self, key, _as_parameter(value, "ParameterDict"))

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                         for k, p in self.items())
