"""Errors a user can fix: a bad setting, a bad config file, a bad checkpoint, a run that diverged.

Each message is one line that names the problem (the setting, the file and line, the step). The command
line prints it as ``deltagrad: error: <message>`` and exits with status 2, without a traceback.
"""

from __future__ import annotations


class RunError(Exception):
    """Base class of the errors that the training system reports to the user as one line."""


class ConfigError(RunError, ValueError):
    """A setting that is out of range, of the wrong type, or unknown; or a config file that cannot be read."""


class CheckpointError(RunError):
    """A run folder or checkpoint file that is missing, truncated, foreign or inconsistent."""


class DivergenceError(RunError):
    """The loss (or a gradient, or a weight) became NaN or infinite; training stopped at ``step``."""

    def __init__(self, message: str, epoch: int, step: int) -> None:
        super().__init__(message)
        self.epoch, self.step = epoch, step
