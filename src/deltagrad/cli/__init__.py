"""deltagrad.cli: the ``deltagrad`` command (``main``); parsing and wiring only. Nothing imports it."""

from deltagrad.cli.main import main

__all__ = ["main"]
