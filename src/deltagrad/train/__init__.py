"""deltagrad.train (being written)."""
