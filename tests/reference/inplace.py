"""PyTorch counterparts of the ops that in-place changes are recorded as: ``name -> f(torch, *args, **kwargs)``.

Each is the in-place operation itself, done on a clone (torch records it as its own CopySlices, IndexPut or
Copy node), so the gradients compared are torch's gradients through an in-place change.
"""

import numpy as np

from reference.indexing import _index


def _view(t, x, chain):
    """x seen through deltagrad's view ops ``chain`` ((cls, args, params) from the base), done in torch."""
    for cls, args, _params in chain:
        name = cls.__name__
        if name == "GetItem":
            x = x[_index(t, args[0])]
        elif name == "Transpose":
            x = x.transpose(*args)
        elif name == "Reshape":
            x = x.view(*args)
        else:
            raise NotImplementedError(name)
    return x


def _copy_slices(t, x, value, chain):
    y = x.clone()
    _view(t, y, chain).copy_(value)
    return y


def _copy(t, x, src):
    y = x.clone()
    return y.fill_(src) if not isinstance(src, t.Tensor) else y.copy_(src)


def _index_put(t, x, value, index):
    y = x.clone()
    y[_index(t, index) if not isinstance(index, np.ndarray) else t.as_tensor(index)] = value
    return y


REFERENCE = {"copy_slices": _copy_slices, "copy": _copy, "index_put": _index_put}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
