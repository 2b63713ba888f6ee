"""Controls about the pack itself (its configuration)."""
