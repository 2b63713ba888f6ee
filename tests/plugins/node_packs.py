"""Node.js policy packs (tests/packs/*/package.json, e.g. AWSGuard) installed from their lock files by
scripts/node-packs, once per machine (npm's cache and the pack's node_modules stay between runs).

``awsguard_pack`` is the directory of Pulumi's AWSGuard pack ready to run; the test is skipped only when node/npm are
missing on the machine (CI installs nothing by hand: the script runs here, from the fixture)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def node_packs_installed() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are not installed")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "node-packs")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"scripts/node-packs failed: {proc.stderr.strip()[-500:]}"
    return ROOT / "tests" / "packs"


@pytest.fixture(scope="session")
def awsguard_pack(node_packs_installed) -> Path:
    return node_packs_installed / "awsguard"
