"""Cost of the evidence write at AnalyzeStack: build + sign + append one 1,000-resource deployment record to sqlite.

    .venv/bin/python bench/evidence_write.py [--resources 1000] [--runs 30]

Builds the record from ``ps019.model`` ResourceViews and Diagnostics exactly as the pack does (inputs digest over
the redacted bag per resource, one policy result per ten resources), then appends it to a fresh sqlite store (open +
append + close, as one `pulumi up` does) with a generated key. Prints medians and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime, timezone

from ps019.evidence import (Artifact, CiRun, EvidenceRecord, Identity, PolicyPackRef, RecordKind, Signer,
                            open_store, policy_result, resource_change)
from ps019.model import Diagnostic, Level, ResourceView, Severity


def make_views(n: int) -> list[ResourceView]:
    views = []
    for i in range(n):
        views.append(ResourceView(
            urn=f"urn:pulumi:prod::payments::aws:s3/bucket:Bucket::bucket-{i}", type="aws:s3/bucket:Bucket",
            name=f"bucket-{i}",
            props={"bucket": f"acme-payments-{i}", "acl": "private", "tags": {"owner": "team-a", "env": "prod"},
                   "versioning": {"enabled": True}, "serverSideEncryptionConfiguration": {"rule": {
                       "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}},
                   "password": f"s3cr3t-{i}", "policy": '{"Version":"2012-10-17","Statement":[]}'},
            secret_paths=frozenset({("password",)})))
    return views


def make_diags(views: list[ResourceView]) -> list[Diagnostic]:
    return [Diagnostic(control_id="PS019-IAM-001", level=Level.ADVISORY, severity=Severity.HIGH, urn=v.urn,
                       message="bucket policy grants s3:GetObject on *", resource_type=v.type)
            for v in views[::10]]


def build(views, diags) -> EvidenceRecord:
    now = datetime.now(timezone.utc)
    return EvidenceRecord(
        kind=RecordKind.UPDATE, organization="acme", project="payments", stack="prod", environment="production",
        change_class="normal", started_at=now, ended_at=now, outcome="succeeded",
        actor=Identity(id="arn:aws:sts::123456789012:assumed-role/deployer/ci-1", kind="aws-sts", verified=True,
                       verified_by="sts:GetCallerIdentity"),
        ci=CiRun(provider="github-actions", run_url="https://github.com/acme/payments/actions/runs/1",
                 ref="refs/heads/main", commit="a" * 40),
        artifact=Artifact(git_commit="a" * 40, source_digest="b" * 64,
                          policy_pack=PolicyPackRef(name="ps019", version="0.1.0", code_digest="c" * 64)),
        resources=[resource_change(v, op="create") for v in views],
        policy_results=[policy_result(d) for d in diags],
        forbidden_values={f"s3cr3t-{i}" for i in range(3)},
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resources", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    views = make_views(args.resources)
    diags = make_diags(views)
    signer = Signer.generate()
    d = tempfile.mkdtemp()
    url = f"sqlite://{d}/evidence.db"
    open_store(url).close()  # schema exists, as after the first run on a machine
    build_ms, append_ms, total_ms, cpu_ms, size = [], [], [], [], 0
    for _ in range(args.runs + 3):
        c0 = time.process_time()
        t0 = time.perf_counter()
        record = build(views, diags)
        t1 = time.perf_counter()
        store = open_store(url)
        stored = store.append(record, signer)
        store.close()
        t2 = time.perf_counter()
        cpu_ms.append((time.process_time() - c0) * 1000)
        build_ms.append((t1 - t0) * 1000)
        append_ms.append((t2 - t1) * 1000)
        total_ms.append((t2 - t0) * 1000)
        size = len(stored.to_json())
    for name, xs in (("build record (wall)", build_ms), ("seal+sign+append, open/close (wall)", append_ms),
                     ("total (wall)", total_ms), ("total (CPU time of this process)", cpu_ms)):
        xs = sorted(xs[3:])  # drop warm-up
        p95 = xs[min(len(xs) - 1, int(len(xs) * 0.95))]
        print(f"{name:38s} median {statistics.median(xs):7.2f} ms   p95 {p95:7.2f} ms")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"resources={args.resources} policy_results={len(diags)} stored bytes (record+envelope)={size}")


if __name__ == "__main__":
    main()
