"""Type promotion follows PyTorch's: the promotion table walked against torch for every pair of dtypes.

For + - * / ** and the comparisons (and ``where``, ``maximum``, ``minimum``), with the other operand a
tensor, a 0-d tensor, a Python number, a NumPy scalar or a 0-d NumPy array (which deltagrad takes as a 0-d
tensor), on either side: the same result dtype and values as torch, or an error where torch raises.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest

import deltagrad as dg
import deltagrad.nn as nn

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
A = [0, 2, 3]  # values every dtype holds, and results that stay small (3 ** 3 = 27 fits int8)
B = [2, 1, 3]
ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow}
COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
               ">=": operator.ge}
NUMBERS = [True, 2, 2.5]
NUMPY_SCALARS = [np.bool_(True), np.uint8(2), np.int8(2), np.int64(2), np.float16(2.5), np.float32(2.5),
                 np.float64(2.5)]


def array(values, dtype: str) -> np.ndarray:
    return np.array(values).astype(dtype)


def outcome(fn, *args):
    """(dtype name, values) of ``fn(*args)``, or "error" where it raises."""
    try:
        out = fn(*args)
    except Exception:  # noqa: BLE001  any exception: torch's and ours need not have the same type
        return "error"
    data = out.detach().numpy() if isinstance(out, torch.Tensor) else out.numpy()
    return str(out.dtype).replace("torch.", ""), data


def mismatches(cases) -> list[str]:
    """Each case: (label, fn, our operands, torch's operands). The labels where deltagrad and torch differ."""
    bad = []
    for label, fn, ours, theirs in cases:
        mine, ref = outcome(fn, *ours), outcome(fn, *theirs)
        if isinstance(mine, str) or isinstance(ref, str):
            if mine != ref:
                bad.append(f"{label}: ours {mine if isinstance(mine, str) else mine[0]}, "
                           f"torch {ref if isinstance(ref, str) else ref[0]}")
        elif mine[0] != ref[0]:
            bad.append(f"{label}: ours {mine[0]}, torch {ref[0]}")
        elif not np.allclose(mine[1].astype(np.float64), ref[1].astype(np.float64), rtol=1e-3, equal_nan=True):
            bad.append(f"{label}: values {mine[1]} vs torch {ref[1]}")
    return bad


def both_orders(name: str, fn, label: str, ours: tuple, theirs: tuple):
    yield f"{label[0]} {name} {label[1]}", fn, ours, theirs
    yield f"{label[1]} {name} {label[0]}", fn, ours[::-1], theirs[::-1]


def tensor_cases(ops: dict, zero_dim: bool):
    """tensor ∘ tensor (or ∘ 0-d tensor), every pair of dtypes, both orders."""
    for name, fn in ops.items():
        for da in DTYPES:
            for db in DTYPES:
                a, b = array(A, da), array(B[0] if zero_dim else B, db)
                label = (f"tensor({da})", f"{'0-d ' if zero_dim else ''}tensor({db})")
                yield from both_orders(name, fn, label, (dg.tensor(a), dg.tensor(b)),
                                       (torch.tensor(a), torch.tensor(b)))


def number_cases(ops: dict, numbers: list):
    """tensor ∘ number (a Python number or a NumPy scalar, which torch takes as a number), both orders."""
    for name, fn in ops.items():
        for da in DTYPES:
            for n in numbers:
                a = array(A, da)
                label = (f"tensor({da})", f"{type(n).__name__}({n})")
                yield from both_orders(name, fn, label, (dg.tensor(a), n), (torch.tensor(a), n))


def zero_dim_array_cases(ops: dict):
    """tensor ∘ 0-d NumPy array, which deltagrad takes as a 0-d tensor (torch gets that 0-d tensor)."""
    for name, fn in ops.items():
        for da in DTYPES:
            for db in DTYPES:
                a, b = array(A, da), array(2, db)
                label = (f"tensor({da})", f"array({db}, 0-d)")
                yield from both_orders(name, fn, label, (dg.tensor(a), b), (torch.tensor(a), torch.tensor(b)))


@pytest.mark.parametrize("zero_dim", [False, True], ids=["tensor", "0-d tensor"])
def test_tensor_with_tensor(zero_dim):
    assert mismatches(tensor_cases({**ARITHMETIC, **COMPARISONS}, zero_dim)) == []


@pytest.mark.parametrize("numbers", [NUMBERS, NUMPY_SCALARS], ids=["python", "numpy"])
def test_tensor_with_number(numbers):
    assert mismatches(number_cases({**ARITHMETIC, **COMPARISONS}, numbers)) == []


def test_tensor_with_zero_dim_array():
    assert mismatches(zero_dim_array_cases({**ARITHMETIC, **COMPARISONS})) == []


def test_maximum_minimum():
    ops = {"maximum": lambda a, b: (dg if isinstance(a, dg.Tensor) else torch).maximum(a, b),
           "minimum": lambda a, b: (dg if isinstance(a, dg.Tensor) else torch).minimum(a, b)}
    assert mismatches(tensor_cases(ops, zero_dim=False)) == []
    assert mismatches(tensor_cases(ops, zero_dim=True)) == []


def test_where():
    cond = np.array([True, False, True])

    def where(a, b):
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            return torch.where(torch.tensor(cond), a, b)
        return dg.where(dg.tensor(cond), a, b)

    ops = {"where": where}
    cases = [*tensor_cases(ops, False), *tensor_cases(ops, True), *number_cases(ops, NUMBERS),
             *number_cases(ops, NUMPY_SCALARS)]
    assert mismatches(cases) == []


def test_the_promotion_rules_in_words():
    x = dg.ones(3)                                                   # float32
    i = dg.tensor([1, 2, 3], dtype="int32")
    assert (x * 2.5).dtype == np.float32 and (2.5 - x).dtype == np.float32
    assert (x * np.float64(2.0)).dtype == np.float32                 # a NumPy scalar is a number
    assert (x / np.sqrt(4.0)).dtype == np.float32
    assert (x * np.array(2.0)).dtype == np.float32                   # a 0-d array is a 0-d tensor
    assert (x + dg.tensor(2.0, dtype="float64")).dtype == np.float32
    assert (x + dg.tensor([2.0], dtype="float64")).dtype == np.float64  # a tensor with a dimension decides
    assert (x + i).dtype == np.float32 and (x + dg.tensor([True])).dtype == np.float32
    assert (i / i).dtype == np.float32 and (i + 2.5).dtype == np.float32
    assert (i + dg.tensor(2.5, dtype="float64")).dtype == np.float64  # a 0-d tensor of a higher category counts
    assert (i + 2).dtype == np.int32 and (dg.tensor([1], dtype="uint8") + dg.tensor([1], dtype="int8")).dtype == \
        np.int16


def test_float32_stays_float32_through_an_mlp_scaled_by_numpy_scalars():
    """Attention-like scaling by np.sqrt(d), a NumPy float64 constant, an integer mask: float32 end to end,
    gradients included, and the same numbers as torch in float32."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    mask = (rng.standard_normal((4, 16)) > 0).astype(np.int64)
    net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    tnet = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for (_, p), tp in zip(net.named_parameters(), tnet.parameters()):
            tp.copy_(torch.tensor(p.data))

    def forward(model, inp, m, two):
        h = model[1](model[0](inp)) / np.sqrt(16)                    # np.float64 scalar
        h = h * m + (1 - m) * np.float64(0.5)                        # int64 mask, NumPy float64 scalar
        return ((model[2](h) * two) ** 2).mean()                     # a 0-d float64 array / tensor

    loss = forward(net, dg.tensor(x), dg.tensor(mask), np.array(2.0))
    tloss = forward(tnet, torch.tensor(x), torch.tensor(mask), torch.tensor(2.0, dtype=torch.float64))
    assert loss.dtype == np.float32 and tloss.dtype == torch.float32
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    for p, tp in zip(net.parameters(), tnet.parameters()):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-4, atol=1e-6)
