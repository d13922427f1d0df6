"""PyTorch counterparts of the reduce ops: ``name -> f(torch, *args, **kwargs)``."""


def _all_or(method):
    """``x.method()`` when no dim is given (PyTorch's all-elements overload), else ``x.method(dim, keepdim)``."""
    def ref(t, x, dim=None, keepdim=False):
        return getattr(x, method)() if dim is None else getattr(x, method)(dim, keepdim)
    return ref


REFERENCE = {
    "sum": _all_or("sum"),
    "mean": _all_or("mean"),
    "var": lambda t, x, dim=None, correction=1, keepdim=False: t.var(x, dim, correction=correction, keepdim=keepdim),
    "std": lambda t, x, dim=None, correction=1, keepdim=False: t.std(x, dim, correction=correction, keepdim=keepdim),
    "amax": lambda t, x, dim=(), keepdim=False: t.amax(x, dim, keepdim),
    "amin": lambda t, x, dim=(), keepdim=False: t.amin(x, dim, keepdim),
    "max": _all_or("max"),
    "min": _all_or("min"),
    "prod": _all_or("prod"),
    "logsumexp": lambda t, x, dim=None, keepdim=False: t.logsumexp(x, tuple(range(x.ndim)) if dim is None else dim,
                                                                    keepdim),
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
