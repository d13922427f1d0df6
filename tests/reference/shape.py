"""PyTorch counterparts of the shape ops: ``name -> f(torch, *args, **kwargs)``."""

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
    "reshape": lambda t, x, *shape: x.reshape(*shape),
    "cat": lambda t, *xs, dim=0: t.cat(xs, dim),
    "stack": lambda t, *xs, dim=0: t.stack(xs, dim),
    "permute": lambda t, x, *dims: x.permute(*dims),
    "transpose": lambda t, x, dim0, dim1: x.transpose(dim0, dim1),
    "squeeze": lambda t, x, dim=None: x.squeeze() if dim is None else x.squeeze(dim),
    "unsqueeze": lambda t, x, dim: x.unsqueeze(dim),
    "flatten": lambda t, x, start_dim=0, end_dim=-1: x.flatten(start_dim, end_dim),
    "expand": lambda t, x, *sizes: x.expand(*sizes),
    "repeat": lambda t, x, *sizes: x.repeat(*sizes),
    "clone": lambda t, x: x.clone(),
    "pad": lambda t, x, pad, mode="constant", value=None: t.nn.functional.pad(x, pad, mode, value),
    "getitem": lambda t, x, index: x[_index(t, index)],
    "index": lambda t, x, index: x[_index(t, index)],
    "getitem_backward": _getitem_backward,
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
