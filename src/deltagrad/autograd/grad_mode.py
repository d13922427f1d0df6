"""Whether operations are recorded for differentiation: ``no_grad``, ``enable_grad``, ``set_grad_enabled``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class _State:
    enabled = True


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


class set_grad_enabled:
    """Turn recording on or off, as a context manager or a function call (like ``torch.set_grad_enabled``)."""

    def __init__(self, mode: bool) -> None:
        self.prev = state.enabled
        state.enabled = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        state.enabled = self.prev


class _GradMode:
    mode = True

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = self.mode

    def __exit__(self, *exc: Any) -> None:
        state.enabled = self.prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context manager and decorator: operations inside are not recorded, results do not require grad."""

    mode = False


class enable_grad(_GradMode):
    """Context manager and decorator: turn recording back on inside a ``no_grad`` block."""

    mode = True
