"""RMSprop and Adagrad: steps scaled by a running (RMSprop) or total (Adagrad) sum of squared gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deltagrad.optim.optimizer import Optimizer, Params, check_nonneg, grad_of, new_buffer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton): divide the gradient by a running root mean square of recent gradients.

    For every parameter θ with gradient g (−g if maximize):

        g ← g + weight_decay·θ
        v ← α v + (1 − α) g²
        s ← √(v − ḡ²) with ḡ ← α ḡ + (1 − α) g   (centered)   or   s ← √v
        b ← momentum·b + g / (s + eps);  θ ← θ − lr·b      (momentum > 0)
        θ ← θ − lr · g / (s + eps)                        (otherwise)

    State per parameter: ``step``, ``square_avg`` (v), ``momentum_buffer`` (b), ``grad_avg`` (ḡ).

    >>> opt = RMSprop(model.parameters(), lr=1e-2, alpha=0.99)
    """

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        for name in ("lr", "eps", "momentum", "weight_decay", "alpha"):
            check_nonneg(name, group[name])

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One RMSprop update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, alpha, eps, wd = group["lr"], group["alpha"], group["eps"], group["weight_decay"]
            momentum, centered = group["momentum"], group["centered"]
            for p in self._params_with_grad(group):
                g = grad_of(p, group["maximize"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = new_buffer(p)
                    if momentum > 0:
                        state["momentum_buffer"] = new_buffer(p)
                    if centered:
                        state["grad_avg"] = new_buffer(p)
                state["step"] += 1
                if wd != 0:
                    g = g + wd * p.data
                v = state["square_avg"].data
                v *= alpha
                v += (1 - alpha) * (g * g)
                if centered:
                    gbar = state["grad_avg"].data
                    gbar += (1 - alpha) * (g - gbar)  # lerp(ḡ, g, 1 − α)
                    avg = np.sqrt(v - gbar * gbar)
                else:
                    avg = np.sqrt(v)
                avg += eps
                if momentum > 0:
                    buf = state["momentum_buffer"].data
                    buf *= momentum
                    buf += g / avg
                    p.data -= lr * buf
                else:
                    p.data -= lr * (g / avg)
                p._version[0] += 1
        return loss


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al.): each coordinate's step shrinks with the sum of its squared gradients.

    Each step t = 1, 2, ... for every parameter θ with gradient g (−g if maximize):

        g ← g + weight_decay·θ;   lr_t = lr / (1 + (t − 1)·lr_decay)
        s ← s + g²;               θ ← θ − lr_t · g / (√s + eps)

    State per parameter (made when the optimizer is built): ``step``, ``sum`` (s, starts at
    ``initial_accumulator_value``).

    >>> opt = Adagrad(model.parameters(), lr=1e-2)
    """

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._init_state(self.param_groups[-1])

    def _init_state(self, group: dict[str, Any]) -> None:
        for p in group["params"]:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["sum"] = new_buffer(p, group["initial_accumulator_value"])

    def _check_group(self, group: dict[str, Any]) -> None:
        for name in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_nonneg(name, group[name])

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adagrad update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, lr_decay, eps, wd = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
            for p in self._params_with_grad(group):
                g = grad_of(p, group["maximize"])
                state = self.state[p]
                state["step"] += 1
                if wd != 0:
                    g = g + wd * p.data
                clr = lr / (1 + (state["step"] - 1) * lr_decay)
                s = state["sum"].data
                s += g * g
                std = np.sqrt(s)
                std += eps
                p.data -= clr * (g / std)
                p._version[0] += 1
        return loss
