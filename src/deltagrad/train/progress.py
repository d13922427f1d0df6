"""The progress bar of a training run: tqdm on stderr, with the running loss and steps per second.

It is off when ``disable`` is set (``--quiet``) or stderr is not a terminal, so logs and pipes stay clean.
Per step it costs a counter increment; tqdm itself redraws at most ten times a second.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class Progress:
    """``with Progress(total=steps) as p: ... p.update(loss) ...``; ``p.write(line, log)`` prints above the bar."""

    def __init__(self, total: int, initial: int = 0, disable: bool = False, desc: str = "") -> None:
        self.bar: Any = None
        self._loss = 0.0
        self._n = 0
        if not disable and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True,
                            leave=False, mininterval=0.1, smoothing=0.1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()

    def set_epoch(self, epoch: int, epochs: int) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch}/{epochs}", refresh=False)

    def update(self, loss: float) -> None:
        if self.bar is None:
            return
        self._loss += loss
        self._n += 1
        if self._n >= 20:  # the loss shown is the mean over the last 20 steps
            self.bar.set_postfix_str(f"loss {self._loss / self._n:.4f}", refresh=False)
            self._loss, self._n = 0.0, 0
        self.bar.update(1)

    def write(self, line: str, log: Callable[[str], None]) -> None:
        if self.bar is not None:
            self.bar.clear()
            log(line)
            self.bar.refresh()
        else:
            log(line)
