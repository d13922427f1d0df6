"""What each registered op is in PyTorch: ``name -> f(torch, *args, **kwargs)``, for the reference tests.

One module per op family in ``reference/``; arguments arrive as the op's ``examples`` give them, with
arrays turned into torch tensors. An op with no PyTorch counterpart is listed in ``NO_TORCH_EQUIVALENT``.
"""

from __future__ import annotations

from reference import (
    activation,
    compare,
    conv,
    elementwise,
    engine,
    indexing,
    inplace,
    linalg,
    loss,
    pool,
    reduce,
    shape,
)

FAMILIES = (engine, elementwise, compare, reduce, shape, indexing, inplace, linalg, conv, pool, activation, loss)
REFERENCE = {name: fn for family in FAMILIES for name, fn in family.REFERENCE.items()}
NO_TORCH_EQUIVALENT = {name: why for family in FAMILIES for name, why in family.NO_TORCH_EQUIVALENT.items()}
