"""PyTorch counterparts of the shape ops: ``name -> f(torch, *args, **kwargs)``."""

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
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
