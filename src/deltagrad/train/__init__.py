"""deltagrad.train: the fit loop, run folders and models described by data.

``train_run(config)`` trains and writes a run folder (config.toml, a checkpoint after every epoch made current
by one atomic step, metrics.json, curves.png: see ``deltagrad.train.run``); ``Trainer`` is the loop itself;
``evaluate_run``, ``predict_run`` and ``run_info`` read a run back. Configs are checked by ``check_config``
and read/written
as TOML by ``toml_io``. Errors the user can fix derive from ``RunError``.

>>> from deltagrad.train import train_run
>>> train_run({"train": {"epochs": 10}}, out="runs/digits-mlp")["test_accuracy"]
"""

from deltagrad.train import toml_io
from deltagrad.train.api import evaluate_run, finish, open_run, predict_run, run_info, train_run
from deltagrad.train.builders import load_data, make_optimizer, make_scheduler, resolve
from deltagrad.train.config import DEFAULTS, MODELS, OPTIMIZERS, SCHEDULERS, check_config
from deltagrad.train.errors import CheckpointError, ConfigError, DivergenceError, RunError
from deltagrad.train.loop import Trainer
from deltagrad.train.models import build_model, cnn_layers, count_parameters, mlp_layers

__all__ = ["train_run", "evaluate_run", "predict_run", "run_info", "open_run", "finish", "Trainer",
           "check_config", "load_data", "resolve", "make_optimizer", "make_scheduler", "build_model",
           "mlp_layers", "cnn_layers", "count_parameters", "RunError", "ConfigError", "CheckpointError",
           "DivergenceError", "DEFAULTS", "MODELS", "OPTIMIZERS", "SCHEDULERS", "toml_io"]
