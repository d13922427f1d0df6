"""``deltagrad train`` as a user waits for it: ``python -m bench.cli_time``.

Runs ``deltagrad train --quiet --json --out TMP`` (plus any train flags after ``--``) in fresh processes and
reports the median wall time (process start to exit), the median ``train_seconds`` of the runs (the time in
training epochs, from the JSON line) and their ratio, against the goal: the whole command at most 2× the training.
Every run must leave a complete run folder with a valid curves.png. One run (``--warmup``) first warms the
disk cache and is not counted.

    python -m bench.cli_time                      # 7 runs of the default: MLP on the digits, 30 epochs
    python -m bench.cli_time --runs 9 -- --model cnn
    python -m bench.cli_time --against /tmp/old/src   # alternate with another source tree (e.g. a git worktree)
    python -m bench.cli_time --pycache            # compiled bytecode cached, as an installed package has it

``--against`` runs each round in both trees one after the other, so that both see the same machine state (the
times of a shared machine move by tens of percent from one minute to the next; their ratio moves less).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.0  # the whole command, at most this many times the training itself
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def one_run(out: Path, train_args: list[str], env: dict[str, str]) -> dict:
    """One ``deltagrad train`` in a fresh process: its wall time and the metrics of its JSON line."""
    cmd = [sys.executable, "-m", "deltagrad", "train", "--quiet", "--json", "--out", str(out), *train_args]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench.cli_time: {' '.join(cmd)} failed:\n{done.stderr.strip()}")
    if done.stderr.strip():  # a warning, e.g. from the drawing process: the run did more than usual
        print(done.stderr.strip(), file=sys.stderr)
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    png = (out / "curves.png").read_bytes()
    if not png.startswith(PNG_SIGNATURE):
        raise SystemExit(f"bench.cli_time: {out / 'curves.png'} is not a PNG")
    return {"wall_s": wall, "train_seconds": float(metrics["train_seconds"]), "png_bytes": len(png)}


def summary(runs: list[dict]) -> dict:
    wall = statistics.median(r["wall_s"] for r in runs)
    train = statistics.median(r["train_seconds"] for r in runs)
    return {"runs": len(runs), "wall_s": round(wall, 3), "train_seconds": round(train, 3),
            "ratio": round(wall / train, 2) if train > 0 else None, "goal": GOAL,
            "walls": [round(r["wall_s"], 3) for r in runs]}


def environment(src: str | None, pycache: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:  # PYTHONPATH comes before the editable install's entry in sys.path
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.cli_time", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=7, help="measured runs (median over them; default 7)")
    p.add_argument("--warmup", type=int, default=1, help="runs before the measured ones, not counted (default 1)")
    p.add_argument("--against", metavar="SRC_DIR", help="also time the deltagrad package in SRC_DIR, alternately")
    p.add_argument("--pycache", action="store_true", help="let Python cache compiled bytecode (in a temporary "
                                                          "folder) even where PYTHONDONTWRITEBYTECODE is set")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on the last line")
    p.add_argument("train_args", nargs="*", metavar="-- TRAIN_FLAGS", help="more flags for deltagrad train")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        p.error(f"--runs must be at least 1 and --warmup at least 0, not {args.runs} and {args.warmup}")
    if args.against is not None and not (Path(args.against) / "deltagrad" / "__init__.py").is_file():
        p.error(f"--against {args.against}: no deltagrad package there (give the folder that holds deltagrad/)")

    with tempfile.TemporaryDirectory(prefix="deltagrad-cli-time-") as tmp:
        pycache = str(Path(tmp) / "pycache") if args.pycache else None
        trees = {"this": environment(None, pycache)}
        if args.against is not None:
            trees["against"] = environment(str(Path(args.against).resolve()), pycache)
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for i in range(args.warmup + args.runs):
            for name, env in trees.items():
                r = one_run(Path(tmp) / f"{name}-{i}", args.train_args, env)
                if i >= args.warmup:
                    runs[name].append(r)
        result = {name: summary(rs) for name, rs in runs.items()}
    if "against" in result:
        result["wall_ratio_this_to_against"] = round(result["this"]["wall_s"] / result["against"]["wall_s"], 3)
    flags = " ".join(args.train_args) or "(defaults)"
    print(f"deltagrad train --quiet {flags}: median of {args.runs} runs in fresh processes "
          f"(goal: wall ≤ {GOAL:g}× train_seconds)")
    for name, s in result.items():
        if isinstance(s, dict):
            label = "this tree" if name == "this" else args.against
            print(f"  {label:<24} wall {s['wall_s']:6.3f} s   train_seconds {s['train_seconds']:6.3f} s   "
                  f"ratio {s['ratio']}×")
    if "against" in result:
        print(f"  wall time, this tree / {args.against}: {result['wall_ratio_this_to_against']}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
