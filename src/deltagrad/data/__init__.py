"""deltagrad.data (being written)."""
