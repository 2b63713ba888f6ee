"""ps019: PS-019 secure change management for Pulumi."""

__version__ = "0.1.0"
