"""iam controls."""
