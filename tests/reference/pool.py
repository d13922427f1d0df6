"""PyTorch counterparts of the pool ops: ``name -> f(torch, *args, **kwargs)``.

``max_pool_scatter`` / ``max_pool_gather`` take the arg-max as a kernel-offset number per output; their
references build the same thing from torch's ``fold`` / ``unfold`` (1-D cases as 2-D with height 1).
"""

import math


def _geometry(size, kernel_size, stride, padding=0, dilation=1, ceil_mode=False, **_):
    nd = len(kernel_size)
    pad = (padding,) * nd if isinstance(padding, int) else tuple(padding)
    dil = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    return nd, tuple(kernel_size), tuple(stride), pad, dil


def _padded(size, out, k, s, p, d):
    """The extent (per dim) that holds every window and the padded input."""
    return [max(i + 2 * q, (o - 1) * st + dl * (kk - 1) + 1) for i, o, kk, st, q, dl in zip(size, out, k, s, p, d)]


def _as2d(nd, *tuples):
    return [(1,) + t if nd == 1 else t for t in tuples]


def max_pool_scatter(t, g, arg, input_size, kernel_size, stride, **kw):
    nd, k, s, p, d = _geometry(input_size, kernel_size, stride, **kw)
    size, out, lead = tuple(input_size[-nd:]), tuple(g.shape[-nd:]), tuple(g.shape[:-nd])
    K = math.prod(k)
    cols = g.unsqueeze(-1) * t.nn.functional.one_hot(arg.long(), K).to(g.dtype)   # (..., *out, K)
    cols = cols.reshape(-1, math.prod(out), K).transpose(1, 2)                     # (B, K, L)
    full = _padded(size, out, k, s, p, d)
    k2, s2, d2, full2 = _as2d(nd, k, s, d, tuple(full))
    x = t.nn.functional.fold(cols, full2, k2, dilation=d2, stride=s2)            # (B, 1, *full)
    x = x.reshape((-1,) + tuple(full))
    for axis, (q, i) in enumerate(zip(p, size)):
        x = x.narrow(axis + 1, q, i)
    return x.reshape(lead + size)


def max_pool_gather(t, h, arg, kernel_size, stride, **kw):
    nd, k, s, p, d = _geometry(None, kernel_size, stride, **kw)
    size, out, lead = tuple(h.shape[-nd:]), tuple(arg.shape[-nd:]), tuple(h.shape[:-nd])
    full = _padded(size, out, k, s, p, d)
    pads = []
    for q, i, f in reversed(list(zip(p, size, full))):
        pads += [q, f - i - q]
    x = t.nn.functional.pad(h.reshape((-1, 1) + size), pads)
    k2, s2, d2 = _as2d(nd, k, s, d)
    x = x.reshape((x.shape[0], 1) + ((1,) if nd == 1 else ()) + tuple(full))
    cols = t.nn.functional.unfold(x, k2, dilation=d2, stride=s2)                  # (B, K, L)
    picked = cols.gather(1, arg.long().reshape(cols.shape[0], 1, -1))
    return picked.reshape(lead + out)


def avg_pool_backward(t, g, input_size, kernel_size, stride, **kw):
    nd = len(kernel_size)
    z = t.zeros(input_size, dtype=g.dtype, requires_grad=True)
    y = getattr(t.nn.functional, f"avg_pool{nd}d")(z, kernel_size, stride, **kw)
    return t.autograd.grad(y, z, g, create_graph=True)[0]


def _max(nd):
    return lambda t, x, *args, **kw: getattr(t.nn.functional, f"max_pool{nd}d")(x, *args, **kw)


def _avg(nd):
    return lambda t, x, *args, **kw: getattr(t.nn.functional, f"avg_pool{nd}d")(x, *args, **kw)


REFERENCE = {"max_pool_scatter": max_pool_scatter, "max_pool_gather": max_pool_gather,
             "avg_pool_backward": avg_pool_backward}
for _nd in (1, 2, 3):
    REFERENCE[f"max_pool{_nd}d"] = _max(_nd)
    REFERENCE[f"avg_pool{_nd}d"] = _avg(_nd)

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
