"""``deltagrad gradients`` and ``deltagrad visualize``: parsing and wiring of the studies in
``deltagrad.explain.studies`` (gradient flow; saliency, activation maximization, deep dream)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from deltagrad.cli import report
from deltagrad.explain import ExplainError, studies
from deltagrad.explain.gradient_flow import INITS, verdict
from deltagrad.explain.visualize import check_image_shape
from deltagrad.train.api import open_run

GRADIENTS_EXAMPLES = """\
examples:
  deltagrad gradients                                  # 3 activations × 4 inits, 20 layers of 64 units
  deltagrad gradients --activations tanh --inits normal,xavier --depth 50
  deltagrad gradients --json --out flow.png
  deltagrad gradients runs/mine                        # the same figures for a trained run

inits: normal = N(0, 1), small = N(0, 0.01²), xavier = Glorot normal √(2/(n_in+n_out)) (gain 1),
kaiming = He normal gain/√n_in (nn.init's gain: sigmoid 1, tanh 5/3, relu √2)
"""

VISUALIZE_EXAMPLES = """\
examples:
  deltagrad visualize runs/mine                        # all three kinds, PNGs in runs/mine/visualize/
  deltagrad visualize runs/mine --kind activation_max --l2 0.1 --tv 0.2 --steps 400
  deltagrad visualize runs/mine --layer 2 --unit 5     # also hidden unit 5 of layer 2 (and dream on it)
  deltagrad visualize runs/mine --kind saliency --json
"""

STACK_FLAGS = ("depth", "width", "activations", "inits")


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


def add_commands(sub: Any, fmt: type) -> None:
    """Add the ``gradients`` and ``visualize`` subcommands to the ``deltagrad`` parser's subparsers ``sub``."""
    g = sub.add_parser("gradients", help="gradient flow: vanishing and exploding gradients, measured",
                       formatter_class=fmt, epilog=GRADIENTS_EXAMPLES,
                       description=_wrap("Per layer of a deep stack of Linear layers at initialization, for each "
                                         "(activation, init) pair: the std of the forward signal x(l) and the RMS "
                                         "of the backward signal dL/dx(l) and of dL/dW(l); and the notes' variance "
                                         "rule Var[o] = n_in σ² measured. With RUN_DIR: the same figures for a "
                                         "trained run's model on its training data."))
    g.add_argument("run", nargs="?", metavar="RUN_DIR", help="a trained run instead of the synthetic stack")
    g.add_argument("--depth", type=int, metavar="N", help="number of Linear layers (default 20)")
    g.add_argument("--width", type=int, metavar="N", help="units per layer (default 64)")
    g.add_argument("--activations", metavar="LIST", help="comma-separated: sigmoid, tanh, relu (default all)")
    g.add_argument("--inits", metavar="LIST", help=f"comma-separated: {', '.join(INITS)} (default all)")
    g.add_argument("--batch", type=int, default=256, metavar="N", help="examples in the batch (default 256)")
    g.add_argument("--seed", type=int, default=0, metavar="N", help="seed of weights, inputs and the examples "
                                                                    "picked (default 0)")
    g.add_argument("--out", default="gradients.png", metavar="FILE.png", help="where the plot goes (default "
                                                                              "gradients.png)")
    g.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    g.set_defaults(func=cmd_gradients)

    v = sub.add_parser("visualize", help="saliency, activation maximization and deep dream of an image model",
                       formatter_class=fmt, epilog=VISUALIZE_EXAMPLES,
                       description=_wrap("Backpropagate to the input of a trained image classifier: saliency maps "
                                         "∂x_j(L)/∂x(0) of test images, images that maximize each class's score "
                                         "(and chosen hidden units) by gradient ascent with L2 and total-variation "
                                         "regularizers, and deep dream from test images. PNG grids go to "
                                         "RUN_DIR/visualize/."))
    v.add_argument("run", metavar="RUN_DIR")
    v.add_argument("--kind", default=",".join(studies.KINDS), metavar="LIST",
                   help="comma-separated: saliency, activation_max, deep_dream (default all)")
    v.add_argument("--layer", type=int, metavar="N", help="a layer (index into the model's layers): maximize its "
                                                          "units too, and dream on it")
    v.add_argument("--unit", type=int, metavar="K", help="with --layer: only unit (or channel) K")
    v.add_argument("--l2", type=float, metavar="λ", help="weight of the L2 regularizer ‖x‖² (default 0.05 for "
                                                          "activation_max, 0 for deep_dream)")
    v.add_argument("--tv", type=float, metavar="λ", help="weight of the total-variation regularizer (default "
                                                          "0.05 for activation_max, 0 for deep_dream)")
    v.add_argument("--steps", type=int, metavar="N", help="gradient-ascent steps (default 200; deep_dream 20)")
    v.add_argument("--lr", type=float, metavar="LR", help="gradient-ascent step size (default 0.1; deep_dream, "
                                                         "whose steps are normalized: 0.05)")
    v.add_argument("--init", choices=["noise", "zeros"], default="noise",
                   help="activation_max starts from N(0, 1) noise (default) or from zeros (the mean image)")
    v.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the starting noise (default 0)")
    v.add_argument("--json", action="store_true", help="print the images' figures as one JSON object on the last "
                                                       "line")
    v.set_defaults(func=cmd_visualize)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``: a reader sees
    the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mask = os.umask(0)  # mkstemp makes the file private; give it the permissions of any new file
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _col(v: float, width: int) -> str:
    """A number right-aligned in ``width`` characters, always with a space before it."""
    text = f"{v:.3e}" if np.isfinite(v) else str(v)
    return " " + text.rjust(width - 1)


def _check_out(out: str) -> Path:
    """``--out``, checked before the study runs: its folder must exist."""
    path = Path(out)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExplainError(f"--out {out}: the folder {folder} does not exist")
    if path.is_dir():
        raise ExplainError(f"--out {out} is a folder; give a file name such as {path / 'gradients.png'}")
    return path


# -- gradients ---------------------------------------------------------------------------------------------------
def cmd_gradients(args: argparse.Namespace) -> int:
    out = _check_out(args.out)
    if args.run is not None:
        return _run_gradients(args, out)
    study = studies.gradient_study(20 if args.depth is None else args.depth, 64 if args.width is None else args.width,
                                   _list(args.activations or "sigmoid,tanh,relu"),
                                   _list(args.inits or ",".join(INITS)), args.batch, args.seed)
    res = study["results"]
    depth, width = res[0]["depth"], res[0]["width"]
    print(f"gradient flow at initialization: {depth} Linear layers of {width} units, batch {args.batch} of "
          f"N(0, 1) inputs, Euclidean loss to N(0, 1) targets, seed {args.seed}")
    print(f"{'activation':<11}{'init':<9}{'std x(1)':>10}{f'std x({depth})':>11}{'dL/dx(1)':>11}"
          f"{f'dL/dx({depth})':>12}{'first/last':>12}  verdict")
    for r in res:
        g = r["grad_rms"]
        ratio = g[0] / g[-1] if g[-1] else float("inf")
        print(f"{r['activation']:<11}{r['init']:<9}{_col(r['act_std'][0], 10)}{_col(r['act_std'][-1], 11)}"
              f"{_col(g[0], 11)}{_col(g[-1], 12)}{_col(ratio, 12)}  {verdict(g)}")
    print("(RMS of dL/dx(l), the backward signal at the output of Linear layer l; vanishing/exploding: the input "
          "side over 1000× smaller/larger; stable: within 10×)")
    vc = study["variance_check"]
    print(f"variance check, one linear unit o = Σ w_i x_i with x_i ~ N(0, 1), w_i ~ N(0, σ²): predicted "
          f"Var[o] = n_in σ² = {vc['n_in']} × {vc['sigma2']:g} = {vc['predicted']:g}, measured {vc['measured']:.4f}")
    write_atomic(out, study["png"])
    print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(report.jsonable({"results": res, "variance_check": vc, "plot": args.out})))
    return 0


def _run_gradients(args: argparse.Namespace, out: Path) -> int:
    given = [f"--{f}" for f in STACK_FLAGS if getattr(args, f) is not None]
    if given:
        raise ExplainError(f"{', '.join(given)} describe the synthetic stack; with RUN_DIR the run's own model is "
                           f"measured")
    trainer, data = open_run(args.run)
    x, y = data.train.arrays
    if args.batch < 1:
        raise ExplainError(f"--batch must be a positive integer, got {args.batch}")
    pick = np.sort(np.random.default_rng(args.seed).permutation(len(x))[:args.batch])
    label = f"{args.run} ({trainer.cfg['data']['dataset']}-{trainer.cfg['model']['name']})"
    study = studies.run_gradient_study(trainer.model, x[pick], y[pick], trainer.loss_fn, label)
    flow = study["results"][0]
    print(f"gradient flow of {label} on {flow['examples']} training examples, loss {flow['loss']:.4g}")
    print(f"{'layer':<16}{'std x(l)':>11}{'RMS dL/dx(l)':>14}{'RMS dL/dW(l)':>14}")
    for name, s, g, w in zip(flow["layers"], flow["act_std"], flow["grad_rms"], flow["weight_grad_rms"]):
        print(f"{name:<16}{_col(s, 11)}{_col(g, 14)}{_col(w, 14)}")
    write_atomic(out, study["png"])
    print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(report.jsonable({"run": args.run, "results": study["results"], "plot": args.out})))
    return 0


# -- visualize ---------------------------------------------------------------------------------------------------
def _visualize_folder(run_dir: str) -> Path:
    """RUN_DIR/visualize/, created; refused if it is a link or not a folder (nothing is written outside it)."""
    folder = Path(run_dir) / "visualize"
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ExplainError(f"{folder} exists and is not a plain folder; move it away to write the images there")
    folder.mkdir(exist_ok=True)
    return folder


def cmd_visualize(args: argparse.Namespace) -> int:
    trainer, data = open_run(args.run)
    cfg = trainer.cfg["data"]
    if not trainer.classification:
        raise ExplainError(f"visualize needs a classifier (class scores to explain), but {args.run} is a "
                           f"{cfg.get('task', 'regression')} run")
    check_image_shape(cfg["input_shape"], f"the run's data set {cfg['dataset']!r}")
    x, y = data.test.arrays
    train_x, _ = data.train.arrays
    pictures = studies.visual_study(
        trainer.model, x, y, mean=cfg["mean"], std=cfg["std"], classes=cfg["classes"],
        bounds=(float(train_x.min()), float(train_x.max())), kinds=_list(args.kind), layer=args.layer,
        unit=args.unit, l2=args.l2, tv=args.tv, steps=args.steps, lr=args.lr, init=args.init, seed=args.seed)
    folder = _visualize_folder(args.run)
    images = []
    for pic in pictures:
        path = folder / pic["name"]
        write_atomic(path, pic["png"])
        for entry in pic["images"]:
            entry["file"] = str(path)
        images += pic["images"]
        first = pic["images"][0]
        kind, n = first["kind"], len(pic["images"])
        if kind == "activation_max":
            hits = sum(e["predicted_class"] == e["unit"] for e in pic["images"])
            raised = sum(e["activation_after"] > e["activation_before"] for e in pic["images"])
            extra = (f", {hits} of {n} predicted as their class" if first.get("label") is not None else "")
            if raised < n and args.init == "zeros":
                extra += " (a unit with no gradient at the start cannot move; try --init noise)"
            print(f"activation_max: layer {first['layer']}, {n} units, activation raised for {raised} of {n}"
                  f"{extra} -> {path}")
        elif kind == "deep_dream":
            gain = np.mean([e["activation_after"] / e["activation_before"] for e in pic["images"]
                            if e["activation_before"]] or [float("nan")])
            changed = sum(e["predicted_class"] != e["predicted_before"] for e in pic["images"])
            print(f"deep_dream: layer {first['layer']}, {n} test images, energy ×{gain:.2f} on average, "
                  f"{changed} of {n} change class -> {path}")
        else:
            right = sum(e["predicted_class"] == e["target"] for e in pic["images"])
            print(f"saliency: {n} test images (one per class, {right} predicted right) -> {path}")
    if args.json:
        print(json.dumps(report.jsonable({"images": images})))
    return 0
