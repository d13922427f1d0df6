"""Per-op overhead: a grad-tracked elementwise op and a tiny forward+backward, deltagrad vs PyTorch.

Small networks live or die by this cost. Run: ``python -m bench.micro`` (one thread, 8×8 float32).
"""

from __future__ import annotations

import json
import sys
import timeit

import numpy as np


def time_per_call(fn, repeat: int = 7, number: int = 2000) -> float:
    """Best-of-``repeat`` seconds per call (the least disturbed measurement)."""
    fn()
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number


def deltagrad_cases() -> dict[str, float]:
    import deltagrad as dg

    rng = np.random.default_rng(0)
    a = dg.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)
    b = dg.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)

    def backward():
        a.grad = b.grad = None
        (a * b).sum().backward()

    return {"mul": time_per_call(lambda: a * b), "mul_sum_backward": time_per_call(backward)}


def torch_cases() -> dict[str, float]:
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)
    b = torch.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)

    def backward():
        a.grad = b.grad = None
        (a * b).sum().backward()

    return {"mul": time_per_call(lambda: a * b), "mul_sum_backward": time_per_call(backward)}


def numpy_cases() -> dict[str, float]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    return {"mul": time_per_call(lambda: a * b)}


def main() -> None:
    rows = {"deltagrad": deltagrad_cases(), "numpy": numpy_cases()}
    try:
        rows["torch"] = torch_cases()
    except ImportError:
        print("torch not installed: deltagrad and NumPy only", file=sys.stderr)
    print(f"{'case':<20}" + "".join(f"{fw:>12}" for fw in rows) + ("   torch/deltagrad" if "torch" in rows else ""))
    for case in rows["deltagrad"]:
        line = f"{case:<20}" + "".join(
            f"{rows[fw][case] * 1e6:>10.2f}µs" if case in rows[fw] else f"{'—':>12}" for fw in rows)
        if "torch" in rows:
            line += f"   {rows['torch'][case] / rows['deltagrad'][case]:>8.2f}×"
        print(line)
    print(json.dumps({fw: {k: v * 1e6 for k, v in r.items()} for fw, r in rows.items()}))


if __name__ == "__main__":
    main()
