"""Engine stand-in fixtures.

``pack_pool`` (session scope) is a :class:`ps019.engine.PackPool`: pass it as ``run_pass(..., pool=pack_pool)`` and
every test that runs the same pack with the same stack, dry-run flag and config reuses one pack process (start-up is
~0.3-0.4 s; a reused pass costs milliseconds). Stack tags and policy-pack config may differ per test: they are re-sent
on every pass. ``test_packs`` is the directory of the tiny packs in tests/packs/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_PACKS = Path(__file__).resolve().parent.parent / "packs"


@pytest.fixture(scope="session")
def pack_pool():
    from ps019.engine import PackPool

    with PackPool() as pool:
        yield pool


@pytest.fixture(scope="session")
def test_packs() -> Path:
    return TEST_PACKS
