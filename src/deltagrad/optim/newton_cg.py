r"""Newton–CG: the notes' *second order optimization*, using the Hessian without ever forming it.

Newton's method minimizes the local quadratic model of the loss J around the current parameters θ,

    J(θ + p) ≈ J(θ) + gᵀp + ½ pᵀ H p,      g = ∇J(θ),  H = ∇²J(θ),

whose minimizer solves the linear system ``H p = −g`` (with ``damping`` λ: ``(H + λI) p = −g``). Near a
minimum with H positive definite the step converges quadratically — the number of correct digits doubles
each step — where gradient descent gains a constant factor per step set by the condition number of H.

Forming H costs n² numbers for n parameters; *conjugate gradients* (CG) solve ``H p = −g`` touching H only
through products ``H v``. A Hessian-vector product is one more reverse pass (Pearlmutter's trick):

    H v = ∇θ (gᵀv)       with g computed by ``autograd.grad(J, θ, create_graph=True)``, v held constant,

so each CG iteration costs about one gradient evaluation. CG is *truncated* (Nocedal & Wright, Newton–CG,
Algorithm 7.1): it stops when the residual ``‖H p + g‖ ≤ η‖g‖`` with the forcing term
``η = min(0.5, √‖g‖)`` (superlinear convergence) or ``η = cg_tol`` if given, after ``max_cg_iter``
iterations, or when it meets a direction d of non-positive curvature (``dᵀHd ≤ 0``, H not positive definite
there): it then returns the iterate so far, or ``−g`` on the first iteration, which is always a descent
direction. The step ``θ ← θ + t p`` takes ``t = lr`` or, with ``line_search='backtracking'`` (default),
halves t from ``lr`` until the Armijo condition ``J(θ + t p) ≤ J(θ) + 10⁻⁴ t gᵀp`` holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deltagrad.autograd import grad as autograd_grad
from deltagrad.autograd.grad_mode import enable_grad, no_grad
from deltagrad.optim.optimizer import Optimizer, Params, check_nonneg
from deltagrad.tensor import Tensor

_ARMIJO_C1 = 1e-4
_MAX_HALVINGS = 40


class NewtonCG(Optimizer):
    """Newton's method with a truncated conjugate-gradient solve and Hessian-vector products.

    ``step(closure)``: the closure computes and *returns* the loss with its graph (it must not call
    ``backward()``: the optimizer differentiates it twice itself). After the step each parameter's ``.grad``
    holds ∇J at the point where the step started. State (on the first parameter): ``n_iter``, ``func_evals``,
    ``hvp_evals``, ``cg_iters`` (of the last step), ``step_size`` (t of the last step), ``grad_norm``
    (‖g‖₂ where the last step started), ``line_search_failed``.

    Args: ``lr`` the full step length (1 is Newton's step); ``max_cg_iter`` CG iterations per step;
    ``cg_tol`` the relative residual at which CG stops (None: ``min(0.5, √‖g‖)``); ``damping`` λ added to
    the Hessian's diagonal (Levenberg-style); ``line_search`` ``'backtracking'`` or None.

    >>> opt = NewtonCG([w, b])                      # logistic regression, labels y in {−1, +1}
    >>> for _ in range(10):
    ...     opt.step(lambda: deltagrad.log(1 + deltagrad.exp(-y * (X @ w + b))).mean())
    """

    def __init__(self, params: Params, lr: float = 1.0, max_cg_iter: int = 50, cg_tol: float | None = None,
                 damping: float = 0.0, line_search: str | None = "backtracking") -> None:
        defaults = dict(lr=lr, max_cg_iter=max_cg_iter, cg_tol=cg_tol, damping=damping, line_search=line_search)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("NewtonCG doesn't support per-parameter options (parameter groups)")
        self._params: list[Tensor] = self.param_groups[0]["params"]

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonneg("lr", group["lr"])
        check_nonneg("damping", group["damping"])
        if not (isinstance(group["max_cg_iter"], int) and group["max_cg_iter"] >= 1):
            raise ValueError(f"Invalid max_cg_iter: {group['max_cg_iter']!r} (must be an int >= 1)")
        if group["cg_tol"] is not None:
            check_nonneg("cg_tol", group["cg_tol"])
        if group["line_search"] not in (None, "backtracking"):
            raise ValueError(f"line_search must be 'backtracking' or None, got {group['line_search']!r}")
        for k, p in enumerate(group["params"]):
            if not p.requires_grad:
                raise ValueError(f"NewtonCG differentiates the loss with respect to its parameters, "
                                 f"but params[{k}] does not require grad")

    # -- flat vectors <-> per-parameter arrays ------------------------------------------------------------
    def _split(self, v: np.ndarray) -> list[np.ndarray]:
        out, offset = [], 0
        for p in self._params:
            n = p.data.size
            out.append(v[offset:offset + n].reshape(p.shape).astype(p.dtype, copy=False))
            offset += n
        return out

    def _flat(self, arrays: list[Any]) -> np.ndarray:
        parts = [np.zeros(p.data.size, p.dtype) if a is None else np.asarray(a.data if isinstance(a, Tensor) else a)
                 .reshape(-1) for a, p in zip(arrays, self._params)]
        return np.concatenate(parts)

    def _hvp(self, grads: list[Tensor | None], v: np.ndarray) -> np.ndarray:
        """H v = ∇θ (gᵀv): one reverse pass through the recorded backward pass."""
        dot = None
        with enable_grad():  # step() runs under no_grad; gᵀv must be recorded to be differentiated
            for g, vi in zip(grads, self._split(v)):
                if g is None or not g.requires_grad:  # a gradient that does not depend on θ: zero curvature
                    continue
                term = (g * Tensor(vi)).sum()
                dot = term if dot is None else dot + term
            if dot is None:
                return np.zeros_like(v)
            hv = autograd_grad([dot], self._params, retain_graph=True, allow_unused=True)
        return self._flat(list(hv))

    def _cg(self, grads: list[Tensor | None], g: np.ndarray, tol: float, max_iter: int,
            damping: float) -> tuple[np.ndarray, int, int]:
        """Approximately solve (H + λI) z = −g; returns (z, CG iterations, Hessian-vector products)."""
        z = np.zeros_like(g)
        r = -g
        d = r.copy()
        rr = float(r @ r)
        if rr ** 0.5 <= tol:
            return z, 0, 0
        hvps = 0
        for j in range(max_iter):
            hd = self._hvp(grads, d)
            hvps += 1
            if damping:
                hd = hd + damping * d
            dhd = float(d @ hd)
            if dhd <= 0:  # non-positive curvature: the quadratic model has no minimum along d
                return (-g if j == 0 else z), j + 1, hvps
            alpha = rr / dhd
            z += alpha * d
            r -= alpha * hd
            rr_new = float(r @ r)
            if rr_new ** 0.5 <= tol:
                return z, j + 1, hvps
            d = r + (rr_new / rr) * d
            rr = rr_new
        return z, max_iter, hvps

    def _loss_at(self, closure: Callable, x0: list[np.ndarray], t: float, p: list[np.ndarray]) -> float:
        for param, x, pi in zip(self._params, x0, p):
            np.add(x, t * pi, out=param.data, casting="same_kind")
            param._version[0] += 1
        with no_grad():
            return float(closure())

    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """One Newton–CG step; ``closure`` (required) returns the loss built with its graph."""
        if closure is None:
            raise RuntimeError("NewtonCG.step needs a closure that computes and returns the loss")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        for k in ("n_iter", "func_evals", "hvp_evals"):
            state.setdefault(k, 0)

        with enable_grad():
            loss = closure()
            if not isinstance(loss, Tensor) or loss.data.size != 1:
                raise RuntimeError("the NewtonCG closure must return the loss as a one-element Tensor")
            if not loss.requires_grad:
                raise RuntimeError("the loss returned by the closure has no graph: build it from the parameters "
                                   "with gradient recording on (and do not call backward() in the closure)")
            grads = list(autograd_grad([loss], self._params, create_graph=True, allow_unused=True))
        state["func_evals"] += 1
        state["n_iter"] += 1
        for param, gi in zip(self._params, grads):
            param.grad = Tensor(np.zeros_like(param.data)) if gi is None else gi.detach()
        f0 = float(loss)
        g = self._flat(grads)
        gnorm = float(np.sqrt(g @ g))
        state["grad_norm"] = gnorm
        tol = (min(0.5, gnorm ** 0.5) if group["cg_tol"] is None else group["cg_tol"]) * gnorm

        z, cg_iters, hvps = self._cg(grads, g, tol, group["max_cg_iter"], group["damping"])
        del grads  # frees the recorded backward pass
        state["cg_iters"] = cg_iters
        state["hvp_evals"] += hvps

        t = float(group["lr"])
        x0 = [param.data.copy() for param in self._params]
        p = self._split(z)
        gtp = float(g @ z)
        state["line_search_failed"] = False
        # where the predicted decrease is below the rounding of J itself, values cannot judge the step: take it
        if group["line_search"] == "backtracking" and -gtp * t > 1e-14 * max(abs(f0), 1e-300):
            for _ in range(_MAX_HALVINGS):
                f = self._loss_at(closure, x0, t, p)
                state["func_evals"] += 1
                if f <= f0 + _ARMIJO_C1 * t * gtp:
                    break
                t *= 0.5
            else:
                t = 0.0
                state["line_search_failed"] = True
        if t != 0.0:
            for param, x, pi in zip(self._params, x0, p):
                np.add(x, t * pi, out=param.data, casting="same_kind")
                param._version[0] += 1
        else:
            self._set(x0)
        state["step_size"] = t
        return loss.detach()

    def _set(self, x0: list[np.ndarray]) -> None:
        for param, x in zip(self._params, x0):
            param.data[...] = x
            param._version[0] += 1
