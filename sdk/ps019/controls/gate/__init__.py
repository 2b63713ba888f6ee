"""gate controls."""
