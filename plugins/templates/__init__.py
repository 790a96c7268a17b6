"""templates tier (being built)."""
