"""PyTorch counterparts of the comparison and arg-max ops: ``name -> f(torch, *args, **kwargs)``."""

REFERENCE = {
    "eq": lambda t, a, b: t.eq(a, b),
    "ne": lambda t, a, b: t.ne(a, b),
    "lt": lambda t, a, b: t.lt(a, b),
    "le": lambda t, a, b: t.le(a, b),
    "gt": lambda t, a, b: t.gt(a, b),
    "ge": lambda t, a, b: t.ge(a, b),
    "argmax": lambda t, x, dim=None, keepdim=False: t.argmax(x, dim, keepdim),
    "argmin": lambda t, x, dim=None, keepdim=False: t.argmin(x, dim, keepdim),
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
