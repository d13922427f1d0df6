"""Elementwise ops: arithmetic, transcendental functions, pointwise nonlinearities, clamp, max/min, where.

Each op: forward on arrays, backward (the vector-Jacobian product) beside it. Backward rules use
operators and op functions so that they run on arrays and, under ``create_graph``, on Tensors.
Gradients of broadcast inputs come back in the output's shape; the engine sums them to the input's.
"""

from __future__ import annotations

from deltagrad.autograd.function import Function, defop
from deltagrad.backend import relu_backward, relu_forward, xp
from deltagrad.ops._util import const, promote, randn

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "sin", "cos", "tanh",
           "sigmoid", "relu", "leaky_relu", "clamp", "maximum", "minimum", "where", "true_divide", "divide",
           "subtract", "multiply", "negative"]

# ---- arithmetic --------------------------------------------------------------------------------------------
#
# The binary ops compute in PyTorch's result dtype (``promote``): float32 with an integer tensor or any number
# stays float32, integers divide to float32. Two arrays of one dtype, the common case, skip the question.

_array = xp.ndarray


def _is_bool(x) -> bool:
    return x.__class__ is bool or (x.__class__ is _array and x.dtype == bool)


def zeros_like(g):
    """Zeros of g's shape and dtype, as an op of g (a Tensor under create_graph) but never NaN · 0."""
    return where(True, xp.zeros((), g.dtype), g)


class Add(Function):
    """y = a + b"""

    inputs = ("a", "b")

    def forward(ctx, a, b):
        if a.__class__ is not _array or b.__class__ is not _array or a.dtype is not b.dtype:  # PyTorch's dtype
            a, b = promote(a, b)
        return a + b

    def backward(ctx, g):
        return g, g

    examples = staticmethod(lambda r: [((randn(r, 3, 4), randn(r, 4)), {}), ((randn(r, 2, 1), 2.5), {})])


class Sub(Function):
    """y = a − b"""

    inputs = ("a", "b")

    def forward(ctx, a, b):
        if a.__class__ is not _array or b.__class__ is not _array or a.dtype is not b.dtype:  # PyTorch's dtype
            if _is_bool(a) or _is_bool(b):  # NumPy refuses bool − bool itself
                raise RuntimeError("subtraction, the `-` operator, with a bool tensor is not supported; to invert "
                                   "a mask use `~` or logical_not()")
            a, b = promote(a, b)
        return a - b

    def backward(ctx, g):
        return g, -g if ctx.needs_input_grad[1] else None

    examples = staticmethod(lambda r: [((randn(r, 3, 1), randn(r, 1, 4)), {}), ((1.5, randn(r, 3)), {})])


class Mul(Function):
    """y = a · b"""

    inputs = ("a", "b")
    reads = ((1,), (0,))

    def forward(ctx, a, b):
        if a.__class__ is not _array or b.__class__ is not _array or a.dtype is not b.dtype:  # PyTorch's dtype
            a, b = promote(a, b)
        return a * b

    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        return g * b if need_a else None, g * a if need_b else None

    examples = staticmethod(lambda r: [((randn(r, 2, 3), randn(r, 3)), {}), ((randn(r, 4), -2.0), {})])


class Div(Function):
    """y = a / b;  da = g / b,  db = −g · a / b²"""

    inputs = ("a", "b")
    reads = ((1,), (0, 1))

    def forward(ctx, a, b):
        if a.__class__ is not _array or b.__class__ is not _array or a.dtype is not b.dtype or a.dtype.kind != "f":
            a, b = promote(a, b, true_divide=True)
        return a / b

    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        return g / b if need_a else None, -g * a / (b * b) if need_b else None

    examples = staticmethod(lambda r: [((randn(r, 2, 3), r.uniform(1, 2, (2, 1))), {}),
                                       ((2.0, r.uniform(1, 2, (3,))), {})])


class Neg(Function):
    """y = −x"""

    inputs = ("x",)

    def forward(ctx, x):
        return -x

    def backward(ctx, g):
        return -g

    examples = staticmethod(lambda r: [((randn(r, 3),), {})])


class Pow(Function):
    """y = a ** b;  da = g · b · a^(b−1) (0 where b = 0),  db = g · y · ln a (0 where a = 0 and b ≥ 0)

    The two conventions are PyTorch's: they make x⁰ = 1 constant in x and 0ᵇ (b ≥ 0) constant in b, where
    the formulas give 0 · ∞ or 0 · ln 0. A negative base has ln a = NaN, as in PyTorch.
    """

    inputs = ("a", "b")

    def forward(ctx, a, b):
        if a.__class__ is not _array or b.__class__ is not _array or a.dtype is not b.dtype:  # PyTorch's dtype
            a, b = promote(a, b)
        if (a if a.__class__ is _array else b).dtype == bool:  # as PyTorch: a bool tensor to a number's power only
            if b.__class__ is not bool:
                raise RuntimeError("pow is not implemented for bool tensors (except a bool tensor ** True/False)")
            return a.copy() if b else xp.ones_like(a)
        if b.__class__ is float and b == -0.5:  # PyTorch's rsqrt: NaN at −inf, where pow gives 0
            return 1 / xp.sqrt(a)
        return a ** b

    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        da = db = None
        if need_a:
            if b.__class__ in (int, float):  # x ** 2: the common case, no masks
                da = g * b * pow(a, b - 1) if b != 0 else zeros_like(g)  # pow: the forward's special cases
            else:
                da = where(const(b) == 0, xp.zeros((), g.dtype), g * b * a ** (b - 1))
        if need_b:
            flat = (const(a) == 0) & (const(b) >= 0)  # 0 ** b for b ≥ 0: constant in b
            db = g * where(flat, xp.zeros((), g.dtype), ctx.result * log(where(flat, 1.0, a)))
        return da, db

    examples = staticmethod(lambda r: [((r.uniform(0.5, 2, (2, 3)), 3), {}),
                                       ((r.uniform(0.5, 2, (2, 3)), r.uniform(-1, 2, (3,))), {}),
                                       ((2.0, randn(r, 4)), {}), ((r.uniform(0.5, 2, (3,)), -0.5), {}),
                                       ((0.0, r.uniform(0.5, 2, (3,))), {}),          # 0 ** t: db = 0
                                       ((-r.uniform(0.5, 2, (2, 3)), xp.array([1, 2, 3])), {})])  # a < 0, b integer


# ---- transcendental ----------------------------------------------------------------------------------------


class Exp(Function):
    """y = eˣ;  dx = g · y"""

    inputs = ("x",)

    def forward(ctx, x):
        return xp.exp(x)

    def backward(ctx, g):
        return g * ctx.result

    examples = staticmethod(lambda r: [((randn(r, 3, 2),), {})])


class Log(Function):
    """y = ln x;  dx = g / x"""

    inputs = ("x",)

    def forward(ctx, x):
        return xp.log(x)

    def backward(ctx, g):
        (x,) = ctx.args
        return g / x

    examples = staticmethod(lambda r: [((r.uniform(0.5, 3, (3, 2)),), {})])


class Sqrt(Function):
    """y = √x;  dx = g / (2y)"""

    inputs = ("x",)

    def forward(ctx, x):
        return xp.sqrt(x)

    def backward(ctx, g):
        return g / (2 * ctx.result)

    examples = staticmethod(lambda r: [((r.uniform(0.5, 3, (4,)),), {})])


class Abs(Function):
    """y = |x|;  dx = g · sign(x)"""

    inputs = ("x",)

    def forward(ctx, x):
        return xp.abs(x)

    def backward(ctx, g):
        (x,) = ctx.args
        return g * xp.sign(const(x))

    examples = staticmethod(lambda r: [((randn(r, 5) + 0.1,), {})])


class Sin(Function):
    """y = sin x;  dx = g · cos x"""

    inputs = ("x",)

    def forward(ctx, x):
        return xp.sin(x)

    def backward(ctx, g):
        (x,) = ctx.args
        return g * cos(x)

    examples = staticmethod(lambda r: [((randn(r, 4),), {})])


class Cos(Function):
    """y = cos x;  dx = −g · sin x"""

    inputs = ("x",)

    def forward(ctx, x):
        return xp.cos(x)

    def backward(ctx, g):
        (x,) = ctx.args
        return -g * sin(x)

    examples = staticmethod(lambda r: [((randn(r, 4),), {})])


# ---- pointwise nonlinearities (the notes' activation layers) ------------------------------------------------


class Tanh(Function):
    """y = tanh x;  dx = g · (1 − y²)"""

    inputs = ("x",)

    def forward(ctx, x):
        return xp.tanh(x)

    def backward(ctx, g):
        y = ctx.result
        return g * (1 - y * y)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {})])


class Sigmoid(Function):
    """y = 1 / (1 + e⁻ˣ), computed without overflow;  dx = g · y · (1 − y)"""

    inputs = ("x",)

    def forward(ctx, x):
        e = xp.exp(-xp.abs(x))  # ≤ 1: never overflows
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def backward(ctx, g):
        y = ctx.result
        return g * y * (1 - y)

    examples = staticmethod(lambda r: [((randn(r, 3, 4) * 3,), {})])


class ReLU(Function):
    """y = max(x, 0);  dx = g · [x > 0]"""

    inputs = ("x",)

    def forward(ctx, x):
        return relu_forward(x)

    def backward(ctx, g):
        if type(g) is xp.ndarray:
            return relu_backward(g, ctx.result)
        return g * (const(ctx.result) > 0)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {})])


class LeakyReLU(Function):
    """y = x if x > 0 else slope · x;  dx = g · (1 if x > 0 else slope)"""

    inputs = ("x",)

    def forward(ctx, x, negative_slope=0.01):
        ctx.slope = negative_slope
        return xp.where(x > 0, x, x * negative_slope)

    def backward(ctx, g):
        x = ctx.args[0]
        return g * xp.where(const(x) > 0, 1.0, ctx.slope).astype(g.dtype)

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), {}), ((randn(r, 5), 0.2), {})])


class Clamp(Function):
    """y = min(max(x, lo), hi);  dx = g · [lo ≤ x ≤ hi]"""

    inputs = ("x",)

    def forward(ctx, x, min=None, max=None):
        ctx.bounds = (min, max)
        return xp.clip(x, min, max)

    def backward(ctx, g):
        (x,) = ctx.args
        lo, hi = ctx.bounds
        x = const(x)
        inside = xp.ones(x.shape, bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return g * inside

    examples = staticmethod(lambda r: [((randn(r, 3, 4),), dict(min=-0.5, max=0.7)),
                                       ((randn(r, 6),), dict(min=0.1))])


class Maximum(Function):
    """y = max(a, b);  the gradient goes to the larger input, split evenly on ties (as PyTorch)"""

    inputs = ("a", "b")

    def forward(ctx, a, b):
        if a.__class__ is not _array or b.__class__ is not _array or a.dtype is not b.dtype:  # PyTorch's dtype
            a, b = promote(a, b)
        return xp.maximum(a, b)

    def backward(ctx, g):
        a, b = (const(v) for v in ctx.args)
        share = (a > b) + 0.5 * (a == b)
        return g * share.astype(g.dtype), g * (1 - share).astype(g.dtype)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), randn(r, 4)), {})])


class Minimum(Function):
    """y = min(a, b);  the gradient goes to the smaller input, split evenly on ties"""

    inputs = ("a", "b")

    def forward(ctx, a, b):
        if a.__class__ is not _array or b.__class__ is not _array or a.dtype is not b.dtype:  # PyTorch's dtype
            a, b = promote(a, b)
        return xp.minimum(a, b)

    def backward(ctx, g):
        a, b = (const(v) for v in ctx.args)
        share = (a < b) + 0.5 * (a == b)
        return g * share.astype(g.dtype), g * (1 - share).astype(g.dtype)

    examples = staticmethod(lambda r: [((randn(r, 3, 4), randn(r, 3, 1)), {})])


class Where(Function):
    """y = a where cond else b;  da = g · cond,  db = g · ¬cond"""

    inputs = ("cond", "a", "b")

    def forward(ctx, cond, a, b):
        ctx.cond = cond = xp.asarray(const(cond), dtype=bool)
        a, b = promote(a, b)
        return xp.where(cond, a, b)

    def backward(ctx, g):
        need_a, need_b = ctx.needs_input_grad[1:]
        zero = xp.zeros((), g.dtype)
        return (None, where(ctx.cond, g, zero) if need_a else None,
                where(ctx.cond, zero, g) if need_b else None)

    examples = staticmethod(lambda r: [((randn(r, 3, 4) > 0, randn(r, 3, 4), randn(r, 4)), {})])


add = defop(Add, method=("add", "__add__", "__radd__"))
sub = defop(Sub, method=("sub", "__sub__"))
mul = defop(Mul, method=("mul", "__mul__", "__rmul__"))
div = defop(Div, method=("div", "__truediv__"))
neg = defop(Neg, method=("neg", "__neg__"))
pow = defop(Pow, method=("pow", "__pow__"))
exp = defop(Exp, method="exp")
log = defop(Log, method="log")
sqrt = defop(Sqrt, method="sqrt")
abs = defop(Abs, method=("abs", "__abs__"))
sin = defop(Sin, method="sin")
cos = defop(Cos, method="cos")
tanh = defop(Tanh, method="tanh")
sigmoid = defop(Sigmoid, method="sigmoid")
relu = defop(ReLU, method="relu")
leaky_relu = defop(LeakyReLU, "leaky_relu")
clamp = defop(Clamp, method=("clamp", "clip"))
maximum = defop(Maximum, method="maximum")
minimum = defop(Minimum, method="minimum")
where = defop(Where)
true_divide = divide = div
subtract, multiply, negative = sub, mul, neg


def _reflect(fn):
    return lambda self, other: fn(other, self)


def _install_reflected() -> None:
    from deltagrad.tensor import Tensor

    Tensor.__rsub__ = _reflect(sub)
    Tensor.__rtruediv__ = _reflect(div)
    Tensor.__rpow__ = _reflect(pow)
    Tensor.__pos__ = lambda self: self
    Tensor.square = lambda self: mul(self, self)
    Tensor.rsqrt = lambda self: div(1.0, sqrt(self))
    Tensor.reciprocal = lambda self: div(1.0, self)


_install_reflected()
