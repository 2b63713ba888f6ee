"""Fixtures for driving the bundled ps019 pack through the engine stand-in.

``ps019_home`` points the per-user data directory (default evidence store, signing key, spool) at a session temp dir
*before* any pack process starts, so no test touches the real ~/.local/share/ps019. Pack processes inherit it.
Tests keep their evidence apart by using their own stack names.
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
    os.environ["PS019_EVIDENCE_STORE"] = f"sqlite:///{home}/evidence.db"
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
