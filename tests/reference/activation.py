"""PyTorch counterparts of the activation ops: ``name -> f(torch, *args, **kwargs)``."""


def _batch_norm(t, x, weight=None, bias=None, running_mean=None, running_var=None, **kw):
    def as_t(a):
        return None if a is None else t.tensor(a.copy())

    return t.nn.functional.batch_norm(x, as_t(running_mean), as_t(running_var), weight, bias, **kw)


REFERENCE = {
    "softmax": lambda t, x, dim: t.softmax(x, dim),
    "log_softmax": lambda t, x, dim: t.log_softmax(x, dim),
    "dropout": lambda t, x, p: t.nn.functional.dropout(x, p),
    "batch_norm": _batch_norm,
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
