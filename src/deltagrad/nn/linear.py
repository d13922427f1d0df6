"""``Linear`` (the lecture's fully connected layer, x_out = W x_in + b) and ``Identity``."""

from __future__ import annotations

import math
from typing import Any

from deltagrad import creation
from deltagrad.nn import functional as F
from deltagrad.nn import init
from deltagrad.nn.module import Module, check_device
from deltagrad.nn.parameter import Parameter
from deltagrad.tensor import Tensor


class Identity(Module):
    """y = x (a placeholder that keeps a network's structure; arguments are accepted and ignored).

    >>> Identity()(deltagrad.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """Fully connected layer: y = x Wᵀ + b, the notes' x_out = W x_in + b applied to each row of a batch.

    Shapes: input (*, in_features) → output (*, out_features); ``weight`` is (out_features, in_features)
    as in the notes and in PyTorch, ``bias`` (out_features,).

    Forward: y = x Wᵀ + b. Backprop to input: dL/dx = δ W. Backprop to weights: dL/dW = δᵀ x (the
    backward signal times the forward signal), dL/db = Σ δ over the batch, where δ = dL/dy.

    Initialization (PyTorch's): W ~ U(−1/√in, 1/√in) via ``kaiming_uniform_(W, a=√5)``, and
    b ~ U(−1/√in, 1/√in). Parameters are float32 unless ``dtype`` is given; ``device`` may only be the CPU.

    >>> fc = Linear(3, 2)
    >>> fc(deltagrad.randn(5, 3)).shape
    (5, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        check_device(device, "Linear")
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {n!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(creation.empty(out_features, in_features, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw W and b again from PyTorch's default distributions (see the class docstring)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
