"""deltagrad.cli (being written)."""
