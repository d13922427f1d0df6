"""PyTorch counterparts of the engine ops: ``name -> f(torch, *args, **kwargs)``."""

REFERENCE = {
    "sum_to": lambda t, x, shape: x.sum_to_size(shape),
    "broadcast_to": lambda t, x, shape: x.broadcast_to(shape),
    "cast": lambda t, x, dtype: x.to(getattr(t, dtype)),
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
