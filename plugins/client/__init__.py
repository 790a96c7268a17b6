"""client tier (being built)."""
