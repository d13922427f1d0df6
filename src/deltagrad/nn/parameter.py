"""``Parameter``: a Tensor that a Module learns (the W and b of the lecture's layers).

Assigning a Parameter to a Module attribute registers it, so ``module.parameters()`` finds it for the
optimizer and ``module.state_dict()`` saves it. It is an ordinary leaf Tensor in every other respect:
ops accept it and its gradient gathers in ``.grad`` after ``backward()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltagrad import backend
from deltagrad.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that a Module registers when assigned to it.

    ``Parameter(data)`` shares ``data``'s memory (a Tensor's array, or a NumPy array of the right dtype),
    as ``torch.nn.Parameter`` does. With no data it is an empty float32 tensor.

    >>> w = Parameter(deltagrad.zeros(2, 3))
    >>> w.requires_grad, w.shape
    (True, (2, 3))
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), dtype=backend.default_float)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
