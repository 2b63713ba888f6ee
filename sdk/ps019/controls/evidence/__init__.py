"""evidence controls."""
