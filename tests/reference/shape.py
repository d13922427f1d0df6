"""PyTorch counterparts of the shape ops: ``name -> f(torch, *args, **kwargs)``."""

REFERENCE = {
    "reshape": lambda t, x, *shape: x.reshape(*shape),
    "cat": lambda t, *xs, dim=0: t.cat(xs, dim),
    "stack": lambda t, *xs, dim=0: t.stack(xs, dim),
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
