"""PyTorch counterparts of the elementwise ops: ``name -> f(torch, *args, **kwargs)``."""

REFERENCE = {
    "add": lambda t, a, b: a + b,
    "sub": lambda t, a, b: a - b,
    "mul": lambda t, a, b: a * b,
    "div": lambda t, a, b: a / b,
    "neg": lambda t, x: -x,
    "pow": lambda t, a, b: a ** b if isinstance(a, t.Tensor) else t.pow(a, b),
    "exp": lambda t, x: t.exp(x),
    "log": lambda t, x: t.log(x),
    "sqrt": lambda t, x: t.sqrt(x),
    "abs": lambda t, x: t.abs(x),
    "sin": lambda t, x: t.sin(x),
    "cos": lambda t, x: t.cos(x),
    "tanh": lambda t, x: t.tanh(x),
    "sigmoid": lambda t, x: t.sigmoid(x),
    "relu": lambda t, x: t.relu(x),
    "leaky_relu": lambda t, x, slope=0.01: t.nn.functional.leaky_relu(x, slope),
    "clamp": lambda t, x, min=None, max=None: t.clamp(x, min, max),
    "maximum": lambda t, a, b: t.maximum(a, b),
    "minimum": lambda t, a, b: t.minimum(a, b),
    "where": lambda t, c, a, b: t.where(c, a, b),
}

# ops with no PyTorch counterpart: name -> why
NO_TORCH_EQUIVALENT: dict[str, str] = {}
