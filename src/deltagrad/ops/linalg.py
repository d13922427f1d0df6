"""Linear algebra ops: matmul (with PyTorch's 1-D and batch-broadcasting rules) and the fused linear layer.

Backward rules are written with ``@``, ``.mT``, ``.reshape`` and ``.sum``, which NumPy arrays and Tensors
both understand, so each rule runs at BLAS speed on arrays and is recorded under ``create_graph``.
"""

from __future__ import annotations

from typing import Any

from deltagrad.autograd.function import Function, defop
from deltagrad.backend import ones, xp
from deltagrad.ops._util import randn
from deltagrad.tensor import Tensor

__all__ = ["matmul", "mm", "bmm", "mv", "dot", "linear"]


class Matmul(Function):
    """y = a @ b, as ``torch.matmul``: 1-D operands are promoted (a row on the left, a column on the right)
    and removed again; batch dimensions broadcast.  da = g @ bᵀ,  db = aᵀ @ g  (summed over broadcast batches)

    Shapes: (n, k) @ (k, m) -> (n, m);  (B, n, k) @ (k, m) -> (B, n, m);  (k,) @ (k,) -> ().

    >>> (deltagrad.ones(5, 2, 3) @ deltagrad.ones(3)).shape   # (5, 2)
    """

    inputs = ("a", "b")
    reads = ((1,), (0,))

    def forward(ctx, a, b):
        try:
            return xp.matmul(a, b)
        except ValueError:
            if getattr(a, "ndim", 0) == 0 or getattr(b, "ndim", 0) == 0:
                raise RuntimeError("matmul: both arguments need at least 1 dimension, got shapes "
                                   f"{tuple(getattr(a, 'shape', ()))} and {tuple(getattr(b, 'shape', ()))}") from None
            raise RuntimeError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                               f"({a.shape[-1]} vs {b.shape[0 if b.ndim == 1 else -2]} in the inner dimension, "
                               "or batch dimensions that do not broadcast)") from None

    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product: g is a scalar
            return g * b if need_a else None, g * a if need_b else None
        if a.ndim == 1:  # a was a row (1, k): g gains its row axis back
            g = g.reshape(*g.shape[:-1], 1, g.shape[-1])
        if b.ndim == 1:  # b was a column (k, 1)
            g = g.reshape(*g.shape, 1)
        da = db = None
        if need_a:
            da = g @ (b.reshape(1, b.shape[0]) if b.ndim == 1 else b.mT)
            if a.ndim == 1:
                da = da.reshape(*da.shape[:-2], da.shape[-1])
        if need_b:
            db = (a.reshape(a.shape[0], 1) if a.ndim == 1 else a.mT) @ g
            if b.ndim == 1:
                db = db.reshape(db.shape[:-1])
        return da, db

    examples = staticmethod(lambda r: [
        ((randn(r, 3, 4), randn(r, 4, 2)), {}),
        ((randn(r, 2, 3, 4), randn(r, 4, 5)), {}),            # batched @ matrix
        ((randn(r, 2, 1, 3, 4), randn(r, 3, 4, 2)), {}),      # batch dimensions broadcast
        ((randn(r, 4), randn(r, 2, 4, 3)), {}),               # 1-D on the left
        ((randn(r, 2, 3, 4), randn(r, 4)), {}),               # 1-D on the right
        ((randn(r, 5), randn(r, 5)), {}),                     # dot product
    ])


matmul = defop(Matmul, method=("matmul", "__matmul__"))
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)


def mm(input: Any, mat2: Any) -> Any:
    """Matrix product of two 2-D tensors, (n, k) @ (k, m) -> (n, m) (``torch.mm``)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm needs two 2-D tensors, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input: Any, mat2: Any) -> Any:
    """Batched matrix product of two 3-D tensors, (B, n, k) @ (B, k, m) -> (B, n, m) (``torch.bmm``)."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError("bmm needs two 3-D tensors with the same batch size, got shapes "
                           f"{tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2)


def mv(input: Any, vec: Any) -> Any:
    """Matrix-vector product, (n, k) @ (k,) -> (n,) (``torch.mv``)."""
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv needs a 2-D and a 1-D tensor, got shapes {tuple(input.shape)} and {tuple(vec.shape)}")
    return matmul(input, vec)


def dot(input: Any, tensor: Any) -> Any:
    """Inner product of two 1-D tensors of the same length (``torch.dot``)."""
    if input.ndim != 1 or tensor.ndim != 1 or input.shape != tensor.shape:
        raise RuntimeError("dot needs two 1-D tensors of the same length, got shapes "
                           f"{tuple(input.shape)} and {tuple(tensor.shape)}")
    return matmul(input, tensor)


Tensor.mm = mm
Tensor.bmm = bmm
Tensor.mv = mv
Tensor.dot = dot


class Linear(Function):
    """The notes' fully connected layer as one node: y = x Wᵀ + b.

    Shapes: x (*, in), W (out, in) (PyTorch's layout, the notes' x_out = W x_in), b (out,) -> y (*, out).
    Backward ("forward signal times backward signal"): dx = g W,  dW = gᵀ x,  db = Σ g, where the sums run
    over every leading dimension of x. Only the gradients that are needed are computed.

    >>> linear(deltagrad.ones(4, 3), deltagrad.ones(2, 3), deltagrad.zeros(2))   # 4 × 2, every entry 3
    """

    inputs = ("input", "weight", "bias")
    reads = ((1,), (0,), ())

    def forward(ctx, input, weight, bias=None):
        if input.ndim == 2:
            x2 = input
        elif input.ndim > 2:
            x2 = input.reshape(-1, input.shape[-1])
        else:
            x2 = input.reshape(1, -1) if input.ndim == 1 else None
        if x2 is None or weight.ndim != 2 or x2.shape[1] != weight.shape[1]:
            raise RuntimeError(f"linear: input of shape {input.shape} does not match weight of shape "
                               f"{getattr(weight, 'shape', None)} (expected input (*, {weight.shape[-1]}) "
                               "and weight (out_features, in_features))")
        # weight.T is a transposed view: BLAS reads it without a copy. np.dot, not @: the same sgemm call with
        # less dispatch around it (digits MLP layers: 32×64 @ 64×128 in 5.9 µs against 6.1, 32×128 @ 128×10 in
        # 2.0 against 2.3)
        y = xp.dot(x2, weight.T)
        if bias is not None:
            if bias.shape != (weight.shape[0],):
                raise RuntimeError(f"linear: bias of shape {bias.shape} does not match weight of shape "
                                   f"{weight.shape} (expected ({weight.shape[0]},))")
            y += bias
        return y if input.ndim == 2 else y.reshape(*input.shape[:-1], weight.shape[0])

    def backward(ctx, g):
        x, weight = ctx.args[:2]
        need = ctx.needs_input_grad
        flat = g.ndim != 2
        g2 = g.reshape(-1, g.shape[-1]) if flat else g
        # plain arrays (not under create_graph): np.dot and np.add.reduce, which skip the dispatch of @ and
        # .sum (0.2–0.3 µs a call, a tenth of each product in the digits MLP's step)
        arrays = type(g2) is xp.ndarray and type(weight) is xp.ndarray and type(x) is xp.ndarray
        dx = dw = db = None
        if need[0]:
            dx = xp.dot(g2, weight) if arrays else g2 @ weight
            if flat:
                dx = dx.reshape(x.shape)
        if need[1]:
            x2 = x.reshape(-1, x.shape[-1]) if flat else x
            dw = xp.dot(g2.T, x2) if arrays else g2.mT @ x2
        if len(need) > 2 and need[2]:
            # Σ over rows as ones @ g (BLAS gemv): 32×128 in 0.5 µs against 1.4, 128×512 in 2.8 against 5.6
            db = xp.dot(ones(len(g2), g2.dtype), g2) if arrays else g2.sum(0)
        return dx, dw, db

    examples = staticmethod(lambda r: [
        ((randn(r, 4, 3), randn(r, 2, 3), randn(r, 2)), {}),
        ((randn(r, 2, 3, 4), randn(r, 5, 4), randn(r, 5)), {}),   # any number of leading dimensions
        ((randn(r, 3, 4), randn(r, 2, 4)), {}),                   # no bias
        ((randn(r, 4), randn(r, 3, 4), randn(r, 3)), {}),         # a single sample
    ])


linear = defop(Linear)
