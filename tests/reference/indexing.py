"""PyTorch counterparts of the indexing ops: ``name -> f(torch, *args, **kwargs)``."""

import numpy as np


def _index(t, index):
    """NumPy arrays and lists inside an index tuple as torch tensors (top-level arrays arrive converted)."""
    if isinstance(index, tuple):
        return tuple(_index(t, i) for i in index)
    if isinstance(index, (np.ndarray, list)):
        return t.as_tensor(np.asarray(index))
    return index


def _getitem_backward(t, g, shape, index):
    """The VJP of x[index] at zeros, kept differentiable in g."""
    z = t.zeros(shape, dtype=g.dtype, requires_grad=True)
    return t.autograd.grad(z[_index(t, index)], z, g, create_graph=True)[0]


REFERENCE = {
    "getitem": lambda t, x, index: x[_index(t, index)],
    "index": lambda t, x, index: x[_index(t, index)],
    "getitem_backward": _getitem_backward,
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
