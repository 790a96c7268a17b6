"""adfs tier (being built)."""
