"""PyTorch counterparts of the reduce ops: ``name -> f(torch, *args, **kwargs)``."""

REFERENCE = {
    "sum": lambda t, x, dim=None, keepdim=False: x.sum() if dim is None else x.sum(dim, keepdim),
    "mean": lambda t, x, dim=None, keepdim=False: x.mean() if dim is None else x.mean(dim, keepdim),
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
