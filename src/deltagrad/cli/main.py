"""The ``deltagrad`` command: parsing and wiring only (the work is in ``deltagrad.train`` and ``deltagrad.data``).

User errors (bad numbers, unknown data sets, bad files, bad checkpoints, divergence) print one line,
``deltagrad: error: <what is wrong>``, and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from deltagrad import __version__
from deltagrad.cli import explain_cmds, report, study_cmds
from deltagrad.data import BUILTIN, DataError
from deltagrad.explain import ExplainError
from deltagrad.train import toml_io
from deltagrad.train.api import evaluate_run, predict_run, run_info, train_run
from deltagrad.train.config import FLAGS, MODELS, OPTIMIZERS, set_path
from deltagrad.train.errors import ConfigError, RunError

USER_ERRORS = (RunError, DataError, ExplainError)
VERSION = __version__

TRAIN_EXAMPLES = """\
examples:
  deltagrad train                                # MLP on the built-in 8x8 digits, ~98% test accuracy
  deltagrad train --model cnn                    # a small CNN on the digits, ~99%
  deltagrad train --dataset iris --epochs 50 --optimizer adam --lr 0.01
  deltagrad train --dataset data.csv --target label --out runs/mine
  deltagrad train --dataset ~/mnist --model cnn --epochs 5     # a folder of MNIST IDX files
  deltagrad train --config my.toml --seed 3      # flags override the config file
  deltagrad train --resume runs/mine --epochs 60 # continue a run up to 60 epochs

built-in data sets: {builtins}
"""

EVAL_EXAMPLES = """\
examples:
  deltagrad eval runs/mine
  deltagrad eval runs/mine --split val --json
"""

PREDICT_EXAMPLES = """\
examples:
  deltagrad predict runs/mine                         # the test split: index,prediction,confidence,target
  deltagrad predict runs/mine --input new.csv --output predictions.csv
  deltagrad predict runs/mine --input images.npy      # raw inputs, shape (N, ...) like the training data
"""

INFO_EXAMPLES = """\
examples:
  deltagrad info runs/mine
  deltagrad info runs/mine --json
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``deltagrad train: error: ... (see --help)`` and status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> Parser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = Parser(prog="deltagrad", formatter_class=fmt,
                    description=_wrap("Train, evaluate and inspect neural networks with deltagrad (backpropagation "
                                "on NumPy)."),
                    epilog="examples:\n  deltagrad train\n  deltagrad train --model cnn\n"
                           "  deltagrad eval runs/<run>\n\n'deltagrad COMMAND --help' describes each command.")
    parser.add_argument("--version", action="version", version=f"deltagrad {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    t = sub.add_parser("train", help="train a model and save the run", formatter_class=fmt,
                       description=_wrap("Train a model (default: an MLP on the built-in 8x8 digits) and save the run "
                                   "folder: config.toml, a checkpoint after every epoch (weights, optimizer state, "
                                   "training state, metrics), metrics.json and curves.png."),
                       epilog=TRAIN_EXAMPLES.format(builtins=", ".join(BUILTIN)))
    t.add_argument("--dataset", metavar="NAME|FILE.csv|IDX_FOLDER",
                   help="a built-in data set (default digits), a numeric CSV file, or a folder of MNIST/"
                        "Fashion-MNIST IDX files")
    t.add_argument("--target", metavar="COLUMN", help="CSV only: the column to predict (name or index; "
                                                      "default the last)")
    t.add_argument("--model", choices=[m for m in MODELS if m != "custom"], help="architecture (default mlp)")
    t.add_argument("--epochs", type=int, metavar="N", help="train until N epochs are complete (default 30)")
    t.add_argument("--batch-size", type=int, metavar="N", help="minibatch size (default 32)")
    t.add_argument("--lr", type=float, metavar="LR", help="learning rate (default: 0.05 for sgd, 1e-3 for adam)")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), help="optimizer (default sgd with momentum 0.9)")
    t.add_argument("--seed", type=int, metavar="N", help="random seed of weights, dropout and shuffling "
                                                         "(default 0); a CPU run repeats bit for bit")
    t.add_argument("--config", metavar="FILE.toml", help="settings from a TOML file (a run's config.toml works)")
    t.add_argument("--out", metavar="DIR", help="run folder (default: a new folder under runs/)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR up to --epochs; the result equals an "
                                                   "uninterrupted run")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no per-epoch lines")
    t.add_argument("--json", action="store_true", help="print the final metrics as one JSON object on the last "
                                                       "line")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="test metrics of a saved run", formatter_class=fmt,
                       description=_wrap("Evaluate a run's model on its data set (the same fixed split as in "
                                         "training)."),
                       epilog=EVAL_EXAMPLES)
    e.add_argument("run", metavar="RUN_DIR")
    e.add_argument("--split", choices=["test", "val", "train"], default="test", help="which part (default test)")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="predictions of a saved run", formatter_class=fmt,
                       description=_wrap("Print a run's predictions as CSV: for the test split of its data set, "
                                         "or for the inputs in a .csv or .npy file."), epilog=PREDICT_EXAMPLES)
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--input", metavar="FILE", help="inputs to predict: a numeric .csv (feature columns; the "
                                                   "training target column is dropped if present) or a .npy array")
    p.add_argument("--output", metavar="FILE.csv", help="write the CSV there instead of to standard output")
    p.set_defaults(func=cmd_predict)

    i = sub.add_parser("info", help="describe a saved run", formatter_class=fmt,
                       description=_wrap("Show a run's data, model, settings, progress, gradient norms and "
                                         "metrics."),
                       epilog=INFO_EXAMPLES)
    i.add_argument("run", metavar="RUN_DIR")
    i.add_argument("--json", action="store_true", help="print everything as one JSON object")
    i.set_defaults(func=cmd_info)
    explain_cmds.add_commands(sub, fmt)
    study_cmds.add_commands(sub, fmt)
    return parser


# -- commands ---------------------------------------------------------------------------------------------------
def _config_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    doc: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if args.config:
        doc = toml_io.load(args.config)
        sources["__file__"] = args.config
        for section, table in doc.items():
            for key in table if isinstance(table, dict) else ():
                sources[f"{section}.{key}"] = args.config
    for path, flag in FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            set_path(doc, path, value)
            sources[path] = flag
    return doc, sources


def cmd_train(args: argparse.Namespace) -> int:
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    if args.resume is not None:
        given = [f for f in ("--dataset", "--target", "--model", "--batch-size", "--lr", "--optimizer", "--seed",
                             "--config", "--out") if getattr(args, f[2:].replace("-", "_")) is not None]
        if given:
            raise ConfigError(f"--resume continues a run with its own settings; only --epochs may be given with it, "
                              f"not {', '.join(given)}")
        result = train_run(resume=args.resume, epochs=args.epochs, quiet=args.quiet, log=log)
    else:
        doc, sources = _config_from_args(args)
        result = train_run(doc, sources, out=args.out, quiet=args.quiet, log=log)
    if args.quiet and not args.json:
        print(report.summary_line(result))
    if args.json:
        print(json.dumps(report.jsonable(result)))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    result = evaluate_run(args.run, args.split)
    if args.json:
        print(json.dumps(report.jsonable(result)))
    else:
        print(report.eval_line(result, args.split))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    result = predict_run(args.run, args.input)
    text = report.predictions_csv(result)
    if args.output:
        from deltagrad.train.run import atomic_write, check_output_path, check_run_dir

        atomic_write(check_output_path(check_run_dir(args.run), args.output), text)
        print(f"wrote {len(result['predictions'])} predictions to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = run_info(args.run)
    if args.json:
        print(json.dumps(report.jsonable(info)))
    else:
        print(report.info_text(info))
    return 0


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed, one line)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"deltagrad: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be written, a disk that is full: not a bug of deltagrad
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"deltagrad: error: {where}{e.strerror or _one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deltagrad: interrupted; the last completed epoch's checkpoint is kept (continue with "
              "'deltagrad train --resume RUN_DIR')", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
