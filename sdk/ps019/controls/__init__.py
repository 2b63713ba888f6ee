"""Controls: one module per control, grouped by area (``gate``, ``iam``, ``identity``, ``evidence``)."""
