"""PyTorch counterparts of the loss ops: ``name -> f(torch, *args, **kwargs)``."""

REFERENCE = {
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
