"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay (``torch.optim.SGD``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deltagrad.optim.optimizer import Optimizer, Params, check_nonneg, grad_of, new_buffer


class SGD(Optimizer):
    r"""Gradient descent, the notes' ``θ ← θ − η ∇J(θ)``, on the gradient of the current mini-batch.

    With batch size N it is full gradient descent; with batch size 1 and the squared error of a linear
    model it is the Widrow–Hoff LMS rule ``w ← w + 2η (y − wᵀx) x``. Each step, for every parameter:

        g ← ∇θ (−∇θ if maximize);  g ← g + weight_decay·θ
        b ← g (first step), else b ← momentum·b + (1 − dampening)·g        (if momentum ≠ 0)
        g ← g + momentum·b (nesterov) or g ← b                            (if momentum ≠ 0)
        θ ← θ − lr·g

    >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonneg("lr", group["lr"])
        check_nonneg("momentum", group["momentum"])
        check_nonneg("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p in self._params_with_grad(group):
                g = grad_of(p, maximize)
                if wd != 0:
                    g = g + wd * p.data
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = new_buffer(p)
                        buf.data[...] = g
                    else:
                        b = buf.data
                        b *= momentum
                        b += (1 - dampening) * g if dampening != 0 else g
                    g = g + momentum * buf.data if nesterov else buf.data
                p.data -= lr * g
                p._version[0] += 1
        return loss
