"""deltagrad.nn (being written)."""
