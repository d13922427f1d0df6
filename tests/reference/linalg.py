"""PyTorch counterparts of the linalg ops: ``name -> f(torch, *args, **kwargs)``."""

REFERENCE = {
    "matmul": lambda t, a, b: t.matmul(a, b),
    "linear": lambda t, x, w, b=None: t.nn.functional.linear(x, w, b),
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
