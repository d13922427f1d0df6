"""The error raised for bad data that the user can fix (a missing file, a ragged CSV row, a truncated IDX file)."""

from __future__ import annotations


class DataError(ValueError):
    """Data that cannot be read as asked; the message names the file (and line) and what is wrong."""
