"""identity controls."""
