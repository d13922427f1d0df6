"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze, flatten, expand, cat, stack, pad, indexing.

Most are views of the input's memory (``is_view``); their backward moves the gradient back into the
input's layout and never computes anything.
"""

from __future__ import annotations

from deltagrad.autograd.function import Function, defop
from deltagrad.backend import xp
from deltagrad.ops._util import normalize_dim, randn

__all__ = ["reshape", "cat", "stack"]


def resolve_shape(shape, size: int) -> tuple[int, ...]:
    """PyTorch's ``view`` shapes: ints or one tuple, with at most one -1; a clear error if sizes differ."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError(f"only one dimension can be inferred (-1) in shape {shape}")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or size % known:
            raise RuntimeError(f"shape {shape} is invalid for input of size {size}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size:
        raise RuntimeError(f"shape {shape} is invalid for input of size {size}")
    return shape


class Reshape(Function):
    """y = x with a new shape (same elements in row-major order);  dx = g reshaped back"""

    is_view = True

    def forward(ctx, x, *shape):
        ctx.shape_in = x.shape
        return x.reshape(resolve_shape(shape, x.size))

    def backward(ctx, g):
        return reshape(g, ctx.shape_in)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), 2, -1), {}), ((randn(r, 6), (3, 2)), {})])


reshape = defop(Reshape, method=("reshape", "view"))


class Cat(Function):
    """y = the inputs joined along ``dim``;  each input's gradient is its slice of g"""

    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("cat needs at least one tensor")
        ctx.dim = normalize_dim(dim, xs[0].ndim)
        ctx.bounds = xp.cumsum([0] + [x.shape[ctx.dim] for x in xs])
        try:
            return xp.concatenate(xs, axis=ctx.dim)
        except ValueError:
            raise ValueError(f"cat: shapes {[x.shape for x in xs]} differ outside dim {dim}") from None

    def backward(ctx, g):
        index = [slice(None)] * g.ndim
        grads = []
        for k, need in enumerate(ctx.needs_input_grad):
            index[ctx.dim] = slice(int(ctx.bounds[k]), int(ctx.bounds[k + 1]))
            grads.append(g[tuple(index)] if need else None)
        return tuple(grads)

    examples = staticmethod(lambda r: [((randn(r, 2, 3), randn(r, 1, 3)), {}),
                                       ((randn(r, 2, 3), randn(r, 2, 1)), dict(dim=-1))])


class Stack(Function):
    """y = the inputs stacked along a new axis ``dim``;  each input's gradient is its slice of g"""

    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("stack needs at least one tensor")
        ctx.dim = normalize_dim(dim, xs[0].ndim + 1)
        shapes = {x.shape for x in xs}
        if len(shapes) > 1:
            raise ValueError(f"stack needs tensors of equal shape, got {[x.shape for x in xs]}")
        return xp.stack(xs, axis=ctx.dim)

    def backward(ctx, g):
        index = [slice(None)] * g.ndim
        grads = []
        for k, need in enumerate(ctx.needs_input_grad):
            index[ctx.dim] = k
            grads.append(g[tuple(index)] if need else None)
        return tuple(grads)

    examples = staticmethod(lambda r: [((randn(r, 2, 3), randn(r, 2, 3)), {}),
                                       ((randn(r, 2), randn(r, 2), randn(r, 2)), dict(dim=1))])


_cat = defop(Cat)
_stack = defop(Stack)


def cat(tensors, dim: int = 0):
    """Join a sequence of tensors along an existing dimension (``torch.cat``)."""
    return _cat(*tensors, dim=dim)


def stack(tensors, dim: int = 0):
    """Join a sequence of equally shaped tensors along a new dimension (``torch.stack``)."""
    return _stack(*tensors, dim=dim)
