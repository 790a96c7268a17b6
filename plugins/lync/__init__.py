"""lync tier (being built)."""
