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


def framework_cases(fw) -> dict[str, float]:
    """The cases in ``fw``: the deltagrad or the torch module (the calls are spelled the same)."""
    rng = np.random.default_rng(0)
    a = fw.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)
    b = fw.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)

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
    import deltagrad

    rows = {"deltagrad": framework_cases(deltagrad), "numpy": numpy_cases()}
    try:
        import torch

        torch.set_num_threads(1)
        rows["torch"] = framework_cases(torch)
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
