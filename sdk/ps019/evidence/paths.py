"""Where evidence lives by default: the per-user data directory, the default store URL and the environment
variables that override them. No other ``ps019.evidence`` module is imported here."""

from __future__ import annotations

import os
from pathlib import Path

ENV_STORE = "PS019_EVIDENCE_STORE"
ENV_SPOOL = "PS019_EVIDENCE_SPOOL_DIR"


def default_data_dir() -> Path:
    """``${XDG_DATA_HOME:-~/.local/share}/ps019``: the per-user home of the default store, key and spool."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ps019"


def default_store_url() -> str:
    return f"sqlite://{default_data_dir() / 'evidence.db'}"  # sqlite:///home/me/.local/share/...


def resolve_store_url(url: str | None) -> str:
    """explicit URL -> $PS019_EVIDENCE_STORE -> the per-user sqlite default."""
    return url or os.environ.get(ENV_STORE) or default_store_url()
