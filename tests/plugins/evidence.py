"""Evidence fixtures: a signer, stores of each kind, and a record factory."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

_counter = itertools.count()


def make_record(kind="update", stack="prod", project="payments", org="acme", environment="production", **over):
    """A realistic deployment record (tests add or override fields)."""
    from ps019.evidence import (Artifact, CiRun, EvidenceRecord, Identity, PolicyPackRef, PolicyResult, RecordKind,
                                ResourceChange, VerifiedReference)

    n = next(_counter)
    start = over.pop("started_at", datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=n))
    fields = dict(
        kind=RecordKind(kind), organization=org, project=project, stack=stack, environment=environment,
        started_at=start, ended_at=start + timedelta(seconds=42), change_class="normal", outcome="succeeded",
        actor=Identity(id="arn:aws:sts::123456789012:assumed-role/deployer/ci-1", kind="aws-sts", verified=True,
                       verified_by="sts:GetCallerIdentity"),
        ci=CiRun(provider="github-actions", run_url="https://github.com/acme/payments/actions/runs/1",
                 ref="refs/heads/main", commit="a" * 40),
        artifact=Artifact(git_commit="a" * 40, source_digest="b" * 64,
                          policy_pack=PolicyPackRef(name="ps019", version="0.1.0", code_digest="c" * 64),
                          iam_data_version="2026-11-01", update_plan_digest="d" * 64),
        resources=[ResourceChange(urn=f"urn:pulumi:{stack}::{project}::aws:s3/bucket:Bucket::b{i}",
                                  type="aws:s3/bucket:Bucket", op="create", inputs_digest="e" * 64) for i in range(2)],
        policy_results=[PolicyResult(control_id="PS019-IAM-001", level="advisory", severity="high",
                                     urn="urn:x", message="too broad")],
        change_request="CHG-1042",
        approvals=[VerifiedReference(ref_id="CHG-1042", kind="approval", verified=True, identity="alice")],
        rollback_plan="https://wiki/rollback/1", monitoring_plan="https://wiki/monitor/1",
    )
    fields.update(over)
    return EvidenceRecord(**fields)


@pytest.fixture
def evidence_signer():
    from ps019.evidence import Signer

    return Signer.generate()


@pytest.fixture
def evidence_record():
    return make_record


@pytest.fixture
def sqlite_evidence_url(tmp_path):
    return f"sqlite://{tmp_path / 'evidence.db'}"


@pytest.fixture
def evidence_home(tmp_path, monkeypatch):
    """An isolated per-user data dir (default store, default key, spool) and no evidence env vars."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for var in ("PS019_EVIDENCE_STORE", "PS019_EVIDENCE_SIGNING_KEY_FILE", "PS019_EVIDENCE_SIGNING_KEY",
                "PS019_EVIDENCE_SPOOL_DIR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "xdg" / "ps019"


S3_BUCKET = "ps019-evidence"


@pytest.fixture
def s3_evidence_url(moto_reset):
    """A fresh Object Lock bucket on the session moto server; returns its store URL."""
    import boto3

    boto3.client("s3", endpoint_url=moto_reset, region_name="us-east-1").create_bucket(
        Bucket=S3_BUCKET, ObjectLockEnabledForBucket=True)
    return f"s3://{S3_BUCKET}/evidence"
