"""deltagrad against PyTorch on the BENCHMARKS.md workloads, side by side: ``python -m bench``.

Each framework runs in a fresh process per round, alternating (deltagrad, torch, deltagrad, torch ...), so
both see the same machine state; the table gives median steps/s over the rounds and their ratio, plus memory.

    python -m bench                       # all workloads, 5 rounds
    python -m bench digits-mlp --rounds 9
    python -m bench --frameworks deltagrad deltagrad-captured torch numpy   # numpy: the MLPs by hand
    python -m bench.micro                 # per-op overhead
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from bench.workloads import WORKLOADS

GOALS = {"digits-mlp": 3.0, "mnist-mlp": 1.2, "lenet": 1.0}


def run(framework: str, workload: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.run_one", framework, workload],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"bench: {framework} on {workload} failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=f"some of {', '.join(WORKLOADS)} (all)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frameworks", nargs="+", default=["deltagrad", "deltagrad-captured", "torch"],
                   choices=["deltagrad", "deltagrad-captured", "torch", "numpy"])
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object at the end")
    args = p.parse_args(argv)
    for w in args.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    args.workloads = args.workloads or list(WORKLOADS)

    summary = {}
    for workload in args.workloads:
        frameworks = [fw for fw in args.frameworks if not (fw == "numpy" and WORKLOADS[workload]["sizes"] == "lenet")]
        runs = {fw: [] for fw in frameworks}
        for _ in range(args.rounds):
            for fw in frameworks:
                runs[fw].append(run(fw, workload))
        med = {fw: statistics.median(r["steps_per_s"] for r in rs) for fw, rs in runs.items()}
        mem = {fw: max(r["peak_rss_mb"] for r in rs) for fw, rs in runs.items()}
        growth = {fw: max(r["peak_growth_mb"] for r in rs) for fw, rs in runs.items()}
        summary[workload] = dict(steps_per_s=med, peak_rss_mb=mem, peak_growth_mb=growth)
        print(f"\n{workload} (median of {args.rounds} alternating rounds; goal ≥ {GOALS[workload]}× torch)")
        for fw in frameworks:
            ratio = f"{med[fw] / med['torch']:6.2f}× torch" if "torch" in med else ""
            print(f"  {fw:<20} {med[fw]:>9.0f} steps/s  {ratio}   peak RSS {mem[fw]:7.1f} MB  "
                  f"(growth while training {growth[fw]:6.1f} MB)")
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
