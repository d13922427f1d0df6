"""The error of a study that cannot run as asked (a model or a setting that does not fit); the command line prints it
as one line, ``deltagrad: error: ...``."""

from __future__ import annotations


class ExplainError(ValueError):
    """A model, input or setting that a study of backprop cannot work with; the message names it."""
