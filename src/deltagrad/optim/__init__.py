"""deltagrad.optim: optimizers (first and second order) and learning-rate schedules, with PyTorch's names.

``SGD`` (gradient descent; batch size 1 is Widrow–Hoff LMS), ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``,
``LBFGS`` (quasi-Newton) and ``NewtonCG`` (Newton's method with conjugate gradients and Hessian-vector
products), all on the ``Optimizer`` base; ``lr_scheduler`` holds the schedules. State dicts are stored
without pickle by splitting them into arrays and JSON: ``optimizer_state_to_flat`` / ``state_to_flat``.
"""

from deltagrad.optim import lr_scheduler
from deltagrad.optim.adam import Adam, AdamW
from deltagrad.optim.flat_state import (
    optimizer_state_from_flat,
    optimizer_state_to_flat,
    state_from_flat,
    state_to_flat,
)
from deltagrad.optim.lbfgs import LBFGS
from deltagrad.optim.newton_cg import NewtonCG
from deltagrad.optim.optimizer import Optimizer, RemovableHandle
from deltagrad.optim.rmsprop import Adagrad, RMSprop
from deltagrad.optim.sgd import SGD

__all__ = ["Optimizer", "RemovableHandle", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LBFGS", "NewtonCG",
           "lr_scheduler", "optimizer_state_to_flat", "optimizer_state_from_flat", "state_to_flat",
           "state_from_flat"]
