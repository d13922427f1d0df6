"""PyTorch counterparts of the conv ops: ``name -> f(torch, *args, **kwargs)``."""

import warnings


def _conv(nd):
    def ref(t, x, w, b=None, **kw):
        with warnings.catch_warnings():  # 'same' padding with an even kernel: torch says it copies the input
            warnings.simplefilter("ignore", UserWarning)
            return getattr(t.nn.functional, f"conv{nd}d")(x, w, b, **kw)
    return ref


def _input(nd):
    return lambda t, size, w, g, **kw: getattr(t.nn.grad, f"conv{nd}d_input")(size, w, g, **kw)


def _weight(nd):
    return lambda t, x, size, g, **kw: getattr(t.nn.grad, f"conv{nd}d_weight")(x, size, g, **kw)


REFERENCE = {}
for _nd in (1, 2, 3):
    REFERENCE[f"conv{_nd}d"] = _conv(_nd)
    REFERENCE[f"conv{_nd}d_input"] = _input(_nd)
    REFERENCE[f"conv{_nd}d_weight"] = _weight(_nd)

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
