"""The ledger: what backprop computes, layer by layer, for one batch through a model.

For each layer l (the children of an ``nn.Sequential``, else every module without children), in the order
the layers run, the ledger records

    input         x(l-1)                 the forward signal coming in
    output        x(l) = f(x(l-1), W(l)) the forward signal going up
    output_grad   dL/dx(l)               the backward signal coming down to the output
    grads         dL/dW(l)               for each of the layer's parameters

with module forward hooks (the signals going up) and tensor hooks on each layer's output (the signals coming
down, complete once every consumer has added its share). The gradients are computed with
``autograd.grad``, so the model's ``.grad`` are left as they were. Then

* ``check_products()`` shows dL/dW(l) equal to the backward signal times the forward signal (``δᵀ x`` for
  Linear, the correlation of δ with x for convolutions..., see ``explain/products.py``);
* ``finite_differences()`` checks a few entries of each parameter gradient against
  (L(θ + ε) − L(θ − ε)) / 2ε (use a float64 model: in float32 rounding swamps the differences).

>>> model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
>>> ledger = Ledger.record(model, x, y, nn.MSELoss())        # x (N, 4), y (N, 2)
>>> ledger[2].output_grad.shape                              # dL/dx(3), the backward signal at the output
(N, 2)
>>> [c.rel_error < 1e-12 for c in ledger.check_products()]
[True, True, True, True]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deltagrad import nn
from deltagrad import random as dg_random
from deltagrad.autograd import enable_grad, no_grad
from deltagrad.autograd import grad as autograd_grad
from deltagrad.explain.errors import ExplainError
from deltagrad.explain.products import products
from deltagrad.tensor import Tensor

REL_FLOOR = 1e-8  # below this size, a finite-difference error is measured absolutely (noise of the difference)
# the step of the central differences: the loss of a confident classifier is a difference of nearly equal numbers
# (log Σ e^z − z_y), whose rounding noise divided by ε grows as ε shrinks; 1e-5 balances it against the ε²
# truncation error (on a trained digits MLP: relative errors ~1e-7, against ~1e-5 with ε = 1e-7)
FD_EPS = 1e-5


@dataclass
class LayerRecord:
    """One layer's entry in the ledger (arrays copied when the layer ran; shapes include the batch)."""

    index: int
    name: str                        # its path in the model ("0", "fc1", ...)
    module: Any
    training: bool                   # the mode it ran in (BatchNorm's statistics depend on it)
    input: np.ndarray | None         # x(l-1)
    output: np.ndarray | None        # x(l)
    output_grad: np.ndarray | None = None               # dL/dx(l)
    params: dict[str, np.ndarray] = field(default_factory=dict)        # W(l) as it was
    grads: dict[str, np.ndarray | None] = field(default_factory=dict)  # dL/dW(l)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)       # running statistics as they were

    @property
    def type(self) -> str:
        return type(self.module).__name__


@dataclass
class ProductCheck:
    """dL/dW computed by the engine against backward × forward (``formula``), for one parameter."""

    index: int
    layer: str
    param: str
    formula: str
    rel_error: float                 # max |engine − product| / max Σ |terms| (the sum's rounding scale)


@dataclass
class FiniteDifferenceCheck:
    """A few entries of one parameter's gradient against central differences of the loss."""

    index: int
    layer: str
    param: str
    entries: list[tuple[int, ...]]
    analytic: list[float]
    numeric: list[float]
    rel_errors: list[float]          # |numeric − analytic| / max(|numeric|, |analytic|, REL_FLOOR)

    @property
    def max_rel_error(self) -> float:
        return max(self.rel_errors, default=0.0)


def default_layers(model: Any) -> list[Any]:
    """The layers the ledger watches: a Sequential's children, else the modules without children."""
    if isinstance(model, nn.Sequential):
        return list(model.children())
    return [m for m in model.modules() if not any(True for _ in m.children())]


def _tensor(x: Any, requires_grad: bool = False) -> Any:
    if x is None or (isinstance(x, Tensor) and not requires_grad):
        return x
    t = Tensor(np.array(x.data if isinstance(x, Tensor) else x, copy=True))
    if requires_grad and t.dtype.kind == "f":
        t.requires_grad_()
    return t


class Ledger:
    """The forward and backward signals and the parameter gradients of ``model``'s layers for one batch.

    ``Ledger.record(model, input, target, loss_fn)`` runs the batch and returns the ledger; index it (or
    iterate) for the ``LayerRecord`` of each layer, in the order the layers ran. ``layers`` chooses which
    modules count as layers (default: ``default_layers(model)``). The model runs in the mode it is in.
    """

    def __init__(self, model: Any, layers: Sequence[Any] | None = None) -> None:
        self.model = model
        self.watched = list(layers) if layers is not None else default_layers(model)
        names = {id(m): n for n, m in model.named_modules()}
        for m in self.watched:
            if id(m) not in names:
                raise ExplainError(f"layer {type(m).__name__} is not a module of the model")
        self._names = names
        self.records: list[LayerRecord] = []
        self.loss: float | None = None
        self.input_grad: np.ndarray | None = None   # dL/dx(0)
        self._closure: tuple | None = None

    @classmethod
    def record(cls, model: Any, input: Any, target: Any, loss_fn: Callable[..., Tensor],
               layers: Sequence[Any] | None = None) -> Ledger:
        """Run ``loss_fn(model(input), target)`` (``loss_fn(model(input))`` if target is None), backprop it,
        and return the ledger of it."""
        ledger = cls(model, layers)
        ledger.run(input, target, loss_fn)
        return ledger

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> LayerRecord:
        return self.records[i]

    def __iter__(self) -> Iterator[LayerRecord]:
        return iter(self.records)

    # -- recording ----------------------------------------------------------------------------------------
    def run(self, input: Any, target: Any, loss_fn: Callable[..., Tensor]) -> float:
        """Forward ``input``, compute the loss, backprop; fill ``records`` and return the loss."""
        self.records = []
        self._closure = (input, target, loss_fn)
        self._rng = dg_random.get_rng_state()  # dropout masks repeat in the finite-difference passes
        self._buffers_before = self._buffer_values()
        x0 = _tensor(input, requires_grad=True)
        handles = [m.register_forward_hook(self._forward_hook) for m in self.watched]
        try:
            with enable_grad():
                loss = self._loss(x0, target, loss_fn)
                params = [p for _, p in self.model.named_parameters() if p.requires_grad]
                wrt = ([x0] if x0.requires_grad else []) + params
                grads = autograd_grad(loss, wrt, allow_unused=True) if wrt else ()
        finally:
            for h in handles:
                h.remove()
        self._buffers_after = self._buffer_values()
        self._rng_after = dg_random.get_rng_state()
        by_id = {id(t): g for t, g in zip(wrt, grads)}
        if x0.requires_grad and by_id.get(id(x0)) is not None:
            self.input_grad = by_id[id(x0)].data.copy()
        for rec in self.records:
            for name, p in rec.module.named_parameters():
                g = by_id.get(id(p))
                rec.grads[name] = None if g is None else g.data.copy()
        self.loss = float(loss.item())
        return self.loss

    def _loss(self, x: Any, target: Any, loss_fn: Callable[..., Tensor]) -> Tensor:
        out = self.model(x)
        loss = loss_fn(out) if target is None else loss_fn(out, _tensor(target))
        if not isinstance(loss, Tensor) or loss.data.size != 1:
            raise ExplainError(f"the loss must be a scalar tensor, got {getattr(loss, 'shape', type(loss))}")
        return loss

    def _forward_hook(self, module: Any, args: tuple, output: Any) -> None:
        if any(r.module is module for r in self.records):
            raise ExplainError(f"layer {self._names[id(module)]} ({type(module).__name__}) ran twice in one "
                               "forward pass; the ledger records each layer once")
        x = next((a for a in args if isinstance(a, Tensor)), None)
        out = output if isinstance(output, Tensor) else None
        rec = LayerRecord(
            index=len(self.records), name=self._names[id(module)], module=module, training=module.training,
            input=None if x is None else x.data.copy(), output=None if out is None else out.data.copy(),
            params={n: p.data.copy() for n, p in module.named_parameters()},
            buffers={n: b.data.copy() for n, b in module.named_buffers()})
        self.records.append(rec)
        if out is not None and out.requires_grad:
            def keep(g: Tensor) -> None:
                rec.output_grad = g.data.copy() if rec.output_grad is None else rec.output_grad + g.data
            out.register_hook(keep)

    def _buffer_values(self) -> list[tuple[Tensor, np.ndarray]]:
        return [(b, b.data.copy()) for b in self.model.buffers()]

    # -- checks -------------------------------------------------------------------------------------------
    def check_products(self) -> list[ProductCheck]:
        """For every layer with a rule (Linear, Conv1/2/3d, BatchNorm, Pointwise): each parameter's gradient
        against backward signal × forward signal computed from the recorded x(l-1) and dL/dx(l)."""
        checks = []
        for rec in self.records:
            if rec.input is None or rec.output_grad is None:
                continue
            args = (rec.module, rec.input, rec.output_grad, rec.params, rec.training, rec.buffers)
            expected = products(*args)
            if expected is None:
                continue
            scales = products(*args, absolute=True)  # Σ |δ| |x|...: what rounding errors are relative to
            for name, (formula, value) in expected.items():
                got = rec.grads.get(name)
                if got is None:
                    continue
                scale = float(scales[name][1].max(initial=0))
                err = float(np.abs(got - value).max(initial=0))
                checks.append(ProductCheck(rec.index, rec.name, name, formula, err / scale if scale else err))
        return checks

    def finite_differences(self, entries: int = 3, eps: float = FD_EPS) -> list[FiniteDifferenceCheck]:
        """For each parameter of each layer, its ``entries`` largest gradient entries against central
        differences of the loss (the same batch, dropout masks and batch statistics as the recorded pass)."""
        if self._closure is None:
            raise ExplainError("the ledger has recorded nothing yet; call run() first")
        out = []
        try:
            for rec in self.records:
                own = dict(rec.module.named_parameters())
                for name, g in rec.grads.items():
                    if g is None:
                        continue
                    p = own[name]
                    if not np.array_equal(p.data, rec.params[name]):
                        raise ExplainError(f"parameter {rec.name}.{name} changed after the ledger was recorded")
                    picks = np.argsort(-np.abs(g), axis=None, kind="stable")[:entries]
                    idx = [tuple(int(i) for i in np.unravel_index(k, g.shape)) for k in picks]
                    numeric = [self._central_difference(p, i, eps) for i in idx]
                    analytic = [float(g[i]) for i in idx]
                    rel = [abs(n - a) / max(abs(n), abs(a), REL_FLOOR) for n, a in zip(numeric, analytic)]
                    out.append(FiniteDifferenceCheck(rec.index, rec.name, name, idx, analytic, numeric, rel))
        finally:
            for b, v in self._buffers_after:
                b.data[...] = v
            dg_random.set_rng_state(self._rng_after)
        return out

    def _central_difference(self, p: Tensor, i: tuple[int, ...], eps: float) -> float:
        orig = p.data[i]
        try:
            p.data[i] = orig + eps
            plus = self._loss_again()
            p.data[i] = orig - eps
            minus = self._loss_again()
        finally:
            p.data[i] = orig
        return (plus - minus) / (2 * eps)

    def _loss_again(self) -> float:
        for b, v in self._buffers_before:  # running statistics as they were before the recorded pass
            b.data[...] = v
        dg_random.set_rng_state(self._rng)
        input, target, loss_fn = self._closure  # type: ignore[misc]
        with no_grad():
            return float(self._loss(_tensor(input), target, loss_fn).item())
