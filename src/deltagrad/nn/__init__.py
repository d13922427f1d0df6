"""deltagrad.nn: Module, Parameter, layers, losses, initializers (``init``) and the functional API (``F``).

Modules hold state (parameters, buffers, children) and call ``deltagrad.nn.functional`` for the maths,
with PyTorch's names, arguments, defaults and state-dict keys.
"""

from deltagrad.nn import init
from deltagrad.nn.container import ModuleDict, ModuleList, Sequential
from deltagrad.nn.hooks import RemovableHandle
from deltagrad.nn.module import IncompatibleKeys, Module
from deltagrad.nn.parameter import Parameter
