"""One framework on one workload, in its own process: ``python -m bench.run_one FRAMEWORK WORKLOAD``.

Prints one JSON line: steps/s, GFLOP/s, final loss, and memory (peak resident set of the process, and the
peak growth after the model, the data and the first steps are set up). Frameworks: ``deltagrad`` (eager),
``deltagrad-captured`` (the training step recorded once and replayed), ``torch`` (PyTorch eager), ``numpy``
(the MLP step written by hand in plain NumPy, bench/numpy_by_hand.py; MLP workloads only).
"""

from __future__ import annotations

import json
import resource
import sys
import time

from bench.workloads import LR, MOMENTUM, WARMUP, WORKLOADS, batches, data, flops_per_step


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def layers(nn, sizes):
    """The same architecture in either framework (their nn modules share names)."""
    if sizes == "lenet":
        return [nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)]
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        out += [nn.Linear(a, b), nn.ReLU()]
    return out[:-1]


def make_step(fw, name: str, captured: bool = False):
    """The training step in framework ``fw`` (the torch or the deltagrad module: they share the names)."""
    fw.manual_seed(0)
    model = fw.nn.Sequential(*layers(fw.nn, WORKLOADS[name]["sizes"]))
    opt = fw.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    lossf = fw.nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad()
        loss = lossf(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    return fw.capture(step) if captured else step


def main(framework: str, name: str) -> dict:
    w = WORKLOADS[name]
    x, y = data(name)
    pairs = batches(x, y, w["batch"], w["steps"])
    if framework == "numpy":
        step, xs = _by_hand(name), list(pairs)
    else:
        if framework == "torch":
            import torch as fw

            fw.set_num_threads(2)
        else:
            import deltagrad as fw
        step = make_step(fw, name, captured=framework == "deltagrad-captured")
        xs = [(fw.from_numpy(a), fw.from_numpy(b)) for a, b in pairs]
    for xb, yb in xs[:WARMUP]:
        step(xb, yb)
    setup = rss_mb()
    t = time.perf_counter()
    for xb, yb in xs:
        loss = step(xb, yb)
    dt = time.perf_counter() - t
    return dict(fw=framework, workload=name, steps_per_s=w["steps"] / dt,
                gflops=flops_per_step(name) * w["steps"] / dt / 1e9,
                loss=loss if isinstance(loss, float) else float(loss.detach().item()),
                peak_rss_mb=rss_mb(), peak_growth_mb=rss_mb() - setup)


def _by_hand(name: str):
    """The MLP step written in plain NumPy (bench/numpy_by_hand.py): ``step(x, y) -> float loss``."""
    from bench.numpy_by_hand import ByHand

    sizes = WORKLOADS[name]["sizes"]
    if sizes == "lenet":
        raise SystemExit("numpy: only the MLP workloads are written by hand")
    return ByHand(sizes).step


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
