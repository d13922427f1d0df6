"""The autograd engine: recording (``Function``), the reverse pass, grad modes and functional transforms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deltagrad.autograd import engine
from deltagrad.autograd.function import OPS, Function, defop
from deltagrad.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from deltagrad.autograd.tape import CaptureError, capture, replayed
from deltagrad.tensor import Tensor


def grad(
    outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, returned rather than stored in ``.grad``.

    As ``torch.autograd.grad``: ``grad_outputs`` weights each output (needed for non-scalar outputs);
    ``create_graph=True`` records the backward pass so the result can be differentiated again.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is not None:
        grad_outputs = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"input {k} of grad() does not require grad")
    return tuple(engine.backward(outputs, grad_outputs, retain_graph, create_graph, inputs,
                                 accumulate=False, allow_unused=allow_unused))


def backward(tensors: Tensor | Sequence[Tensor], grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Sequence[Tensor] | None = None) -> None:
    """Accumulate the gradients of ``tensors`` into the leaves' ``.grad`` (``torch.autograd.backward``)."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is not None:
        grad_tensors = [grad_tensors] if isinstance(grad_tensors, Tensor) else list(grad_tensors)
    engine.backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


__all__ = ["Function", "OPS", "defop", "grad", "backward", "capture", "replayed", "CaptureError", "no_grad",
           "enable_grad", "set_grad_enabled",
           "is_grad_enabled"]
