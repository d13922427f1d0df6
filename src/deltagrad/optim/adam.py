"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay (``torch.optim.Adam/AdamW``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deltagrad.backend import adam_
from deltagrad.optim.optimizer import Optimizer, Params, check_beta, check_nonneg, grad_of, new_buffer


class Adam(Optimizer):
    r"""Adam (Kingma & Ba): a step from running means of the gradient and of its square.

    Each step t = 1, 2, ... for every parameter θ with gradient g (−g if maximize):

        g ← g + weight_decay·θ                    (Adam: L2 penalty in the gradient)
        θ ← θ − lr·weight_decay·θ                 (AdamW: decoupled decay, instead of the line above)
        m ← β₁ m + (1 − β₁) g ;   v ← β₂ v + (1 − β₂) g²
        v̂ ← max(v̂, v) if amsgrad else v
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (amsgrad).

    >>> opt = Adam(model.parameters(), lr=1e-3)
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonneg("lr", group["lr"])
        check_nonneg("eps", group["eps"])
        betas = group["betas"]
        if not (isinstance(betas, tuple | list) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        check_beta("beta parameter at index 0", betas[0])
        check_beta("beta parameter at index 1", betas[1])
        check_nonneg("weight_decay", group["weight_decay"])

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adam update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd, amsgrad, decoupled = group["weight_decay"], group["amsgrad"], group["decoupled_weight_decay"]
            ps, gs, ms, vs, vmaxs = [], [], [], [], []   # θ, g, m, v, v̂ of every parameter: one backend call
            step_sizes, bc2_sqrts = [], []
            params = self._params_with_grad(group)
            for p in params:
                g = grad_of(p, group["maximize"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = new_buffer(p)
                    state["exp_avg_sq"] = new_buffer(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = new_buffer(p)
                state["step"] += 1
                step = float(state["step"])
                if wd != 0:
                    if decoupled:
                        p.data *= 1 - lr * wd
                    else:
                        g = g + wd * p.data
                ps.append(p.data)
                gs.append(g)
                ms.append(state["exp_avg"].data)
                vs.append(state["exp_avg_sq"].data)
                if amsgrad:
                    vmaxs.append(state["max_exp_avg_sq"].data)
                step_sizes.append(lr / (1 - beta1**step))
                bc2_sqrts.append((1 - beta2**step) ** 0.5)
            adam_(ps, gs, ms, vs, vmaxs if amsgrad else None, step_sizes, bc2_sqrts, beta1, beta2, eps)
            for p in params:
                p._version[0] += 1
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter): ``θ ← θ(1 − lr·weight_decay)`` before the
    Adam step, instead of adding ``weight_decay·θ`` to the gradient. Same options as ``Adam``; the default
    ``weight_decay`` is 1e-2.

    >>> opt = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
