"""Fixtures for driving the bundled ps019 pack through the engine stand-in.

``ps019_home`` points the per-user data directory (default evidence store, signing key, spool) at a session temp dir
*before* any pack process starts, so no test touches the real ~/.local/share/ps019. Pack processes inherit it.
Tests keep their evidence apart by using their own stack names. ``pinned_store_config`` is the pack config that pins
that store for production runs (``ps019-settings.evidence.store_url``), merged into a test's own settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PACK_DIR = Path(__file__).resolve().parents[2] / "policypacks" / "ps019"
_VARS = ("XDG_DATA_HOME", "PS019_EVIDENCE_STORE", "PS019_EVIDENCE_SPOOL_DIR", "PS019_CHANGE_REQUEST",
         "PS019_BREAK_GLASS_GRANT", "PS019_GIT_COMMIT")


@pytest.fixture(scope="session", autouse=True)
def ps019_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("ps019-home")
    saved = {k: os.environ.get(k) for k in _VARS}
    for k in _VARS:
        os.environ.pop(k, None)
    os.environ["XDG_DATA_HOME"] = str(home)
    # The per-user default store: production runs never take their store from $PS019_EVIDENCE_STORE (only from the
    # pack config), so the variable names the same store they fall back to, and tests read one store either way.
    os.environ["PS019_EVIDENCE_STORE"] = f"sqlite:///{home}/ps019/evidence.db"
    try:
        yield home
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def ps019_pack() -> Path:
    return PACK_DIR


@pytest.fixture
def evidence_store(ps019_home):
    from ps019.evidence import open_store

    return open_store(os.environ["PS019_EVIDENCE_STORE"])


@pytest.fixture
def pinned_store_config(ps019_home, tmp_path):
    """``pinned_store_config(settings=None) -> path``: a policy pack config file whose ps019-settings pin the session
    evidence store (production runs take their store only from the pack config; without it they are blocked by
    PS019-EVID-001), plus any other ``ps019-settings`` sections and top-level entries given."""
    import json

    counter = iter(range(1_000_000))

    def make(settings: dict | None = None, **entries) -> Path:
        merged = dict(settings or {})
        merged["evidence"] = {"store_url": os.environ["PS019_EVIDENCE_STORE"], **merged.get("evidence", {})}
        path = tmp_path / f"pinned-config-{next(counter)}.json"
        path.write_text(json.dumps({"ps019-settings": merged, **entries}))
        return path

    return make
