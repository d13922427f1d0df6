"""The global random number generator behind randn/rand, initializers and dropout (``manual_seed``).

Its state is plain data (JSON-serializable), so training runs save and restore it without pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_generator = np.random.default_rng(0)


def default_generator() -> np.random.Generator:
    return _generator


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator: the same seed gives the same numbers on every CPU run."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def seed() -> int:
    """Seed the global generator from the operating system's entropy and return the seed used."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def get_rng_state() -> dict[str, Any]:
    return _generator.bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    _generator.bit_generator.state = state
