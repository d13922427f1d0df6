"""TOML for run configs: read with ``tomllib`` (``tomli`` before Python 3.11), write with a small writer.

The writer covers what a config holds: tables and sub-tables of strings, booleans, integers, floats
(``inf``/``nan`` included), arrays of these, and arrays of inline tables (a model's layer list). ``None``
values are left out (TOML has no null). ``loads(dumps(d)) == d`` for such documents.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from deltagrad.data.files import read_text
from deltagrad.train.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def loads(text: str, source: str = "<string>") -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a ``ConfigError`` naming ``source`` and the line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: invalid TOML: {e}") from None


def load(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable or broken file is a one-line ``ConfigError``."""
    path = Path(path)
    return loads(read_text(path, ConfigError, "no such config file"), str(path))


def _key(k: str) -> str:
    if not isinstance(k, str):
        raise TypeError(f"TOML keys are strings, got {k!r}")
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write a {type(v).__name__} value to TOML: {v!r}")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def _write_table(lines: list[str], table: dict[str, Any], path: list[str]) -> None:
    plain = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, dict)]
    subs = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    if path and (plain or not subs):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in plain:
        if _is_table_array(v):  # one inline table per line: readable layer lists
            lines.append(f"{_key(k)} = [")
            lines.extend(f"    {_value(x)}," for x in v)
            lines.append("]")
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in subs:
        _write_table(lines, v, [*path, k])


def dumps(doc: dict[str, Any], header: str = "") -> str:
    """TOML text for ``doc`` (nested dicts become ``[tables]``), with ``header`` as leading comment lines."""
    lines: list[str] = []
    _write_table(lines, doc, [])
    head = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return head + ("\n" if head and lines else "") + "\n".join(lines) + "\n"
