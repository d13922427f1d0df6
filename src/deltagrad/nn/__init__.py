"""deltagrad.nn: Module, Parameter, layers, losses, initializers (``init``) and the functional API (``F``).

Modules hold state (parameters, buffers, children) and call ``deltagrad.nn.functional`` for the maths,
with PyTorch's names, arguments, defaults and state-dict keys.

>>> from deltagrad import nn
>>> from deltagrad.nn import functional as F
>>> model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
"""

from deltagrad.nn import functional, init
from deltagrad.nn.activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from deltagrad.nn.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from deltagrad.nn.conv import Conv1d, Conv2d, Conv3d
from deltagrad.nn.dropout import Dropout
from deltagrad.nn.flatten import Flatten, Unflatten
from deltagrad.nn.hooks import RemovableHandle
from deltagrad.nn.linear import Identity, Linear
from deltagrad.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, EuclideanLoss, MSELoss, NLLLoss
from deltagrad.nn.module import IncompatibleKeys, Module
from deltagrad.nn.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from deltagrad.nn.parameter import Parameter
from deltagrad.nn.pointwise import Pointwise
from deltagrad.nn.pooling import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d

__all__ = ["functional", "init", "Module", "Parameter", "RemovableHandle", "IncompatibleKeys",
           "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Linear", "Identity", "Conv1d", "Conv2d", "Conv3d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
           "AvgPool1d", "AvgPool2d", "AvgPool3d", "Flatten", "Unflatten", "Dropout", "BatchNorm1d", "BatchNorm2d",
           "BatchNorm3d", "Pointwise",
           "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
           "MSELoss", "EuclideanLoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"]
