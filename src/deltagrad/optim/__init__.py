"""deltagrad.optim (being written)."""
