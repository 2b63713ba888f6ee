"""Cost of the evidence write at AnalyzeStack.

    .venv/bin/python bench/evidence_write.py [--resources 1000] [--runs 30]
    .venv/bin/python bench/evidence_write.py --pack 10000 50000

Default mode: builds the record from ``ps019.model`` ResourceViews and Diagnostics exactly as the pack does (inputs
digest over the redacted bag per resource, one policy result per ten resources), then appends it to a fresh sqlite
store (open + append + close, as one `pulumi up` does) with a generated key. Prints medians and p95 in milliseconds.

``--pack N...``: the record against the pack's own analysis, side by side in one run. For each size it builds the
synthetic stack export of bench/pack_bench.py (bench/synthetic.py: ~30 keys per resource, a secret in about a third
of them) and drives the real servicer in-process -- the code behind the pack's gRPC Analyze/AnalyzeStack, every
control enabled, the record written to a temporary sqlite store -- through a preview pass. It reports the pack's
analysis (every Analyze call), the record (building, redacting, canonicalising, signing and appending it inside
AnalyzeStack) and their ratio; then the same record again with the previous redaction (one scan of the serialised
record per secret and quoted form) as the baseline. The in-process analysis leaves out the gRPC round trips the
real pack also pays, so the ratio is an upper bound of the real one.
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


def baseline_redact(document, forbidden):
    """The redaction before Aho-Corasick (scan the serialised record once per secret, raw and JSON-escaped)."""
    import json as _json

    from ps019.model import SECRET_PLACEHOLDER

    values = sorted((v for v in forbidden if v), key=len, reverse=True)
    if not values:
        return document
    text = _json.dumps(document, ensure_ascii=False)
    if not any(v in text or _json.dumps(v, ensure_ascii=False)[1:-1] in text for v in values):
        return document

    def walk(node):
        if isinstance(node, str):
            for v in values:
                node = SECRET_PLACEHOLDER if node == v else node.replace(v, SECRET_PLACEHOLDER) if len(v) >= 4 else node
            return node
        if isinstance(node, dict):
            return {walk(k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(document)


def pack_mode(sizes: list[int]) -> None:
    import json
    import sys
    from pathlib import Path

    tmp = tempfile.mkdtemp(prefix="ps019-evidence-bench-")
    os.environ.update(XDG_DATA_HOME=tmp, PULUMI_ORGANIZATION="organization", PULUMI_PROJECT="bench",
                      PULUMI_STACK="dev", PULUMI_DRY_RUN="true", AWS_EC2_METADATA_DISABLED="true")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pulumi.runtime.proto import analyzer_pb2 as pb
    from synthetic import make_export

    import ps019.evidence.store as store_module
    from ps019.evidence import open_store
    from ps019.controls.registry import all_controls
    from ps019.engine import load_stack_export
    from ps019.engine.resources import urn_name
    from ps019.engine.values import marshal_properties
    from ps019.logging import configure_cli
    from ps019.pack import build_policies, facts
    from ps019.pack.servicer import Ps019Servicer

    configure_cli("warning")
    timings: dict[str, float] = {}
    real_emit, real_build, real_redact = facts.emit_record, facts.build_record, store_module.redact_forbidden

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    facts.emit_record = timed("record", real_emit)
    facts.build_record = timed("build", real_build)
    controls = all_controls()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          "in-process preview pass, every control enabled, sqlite store")
    rows = []
    for n in sizes:
        path = Path(tmp) / f"export-{n}.json"
        path.write_text(json.dumps(make_export(n)))
        resources = load_stack_export(path, stack="organization/bench/dev").resources
        requests = [pb.AnalyzeRequest(type=r.type, urn=r.urn, name=urn_name(r.urn),
                                      properties=marshal_properties(r.inputs, dry_run=True)) for r in resources]
        for label, redact in (("now", real_redact), ("baseline redaction", baseline_redact)):
            store_module.redact_forbidden = timed("redact", redact)
            os.environ["PS019_EVIDENCE_STORE"] = f"sqlite:///{tmp}/evidence-{n}-{label.split()[0]}.db"
            servicer = Ps019Servicer("ps019", "0.1.0", controls, build_policies(controls))
            timings.clear()
            t0 = time.perf_counter()
            for request in requests:
                servicer.Analyze(request, None)
            analysis = time.perf_counter() - t0
            t0 = time.perf_counter()
            servicer.AnalyzeStack(pb.AnalyzeStackRequest(), None)
            analyze_stack = time.perf_counter() - t0
            run = servicer._current_run()  # noqa: SLF001 - the bench reads the run it drove
            assert run.evidence.status == "stored" and len(run.resources) == len(requests), run.evidence
            with open_store(os.environ["PS019_EVIDENCE_STORE"]) as store:
                stored = store.get(run.evidence.record_id)
                size = len(stored.to_json())
                assert len(stored.document["resources"]) == len(requests)  # every resource's evidence is kept
            secrets = len(facts._secret_values(run.resources))  # noqa: SLF001
            rows.append((n, label, analysis, timings["record"], timings["build"], timings["redact"], analyze_stack,
                         secrets, size))
    store_module.redact_forbidden = real_redact
    print("| resources | redaction | pack analysis s | record s | of which build s | redaction s | record / analysis "
          "| secrets | stored bytes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, label, analysis, record, build_s, redact_s, _stack, secrets, size in rows:
        print(f"| {n:,} | {label} | {analysis:.2f} | {record:.2f} | {build_s:.2f} | {redact_s:.2f} | "
              f"{record / analysis:.1%} | {secrets:,} | {size:,} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resources", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--pack", type=int, nargs="+", metavar="N",
                    help="record cost against the pack's own analysis at these sizes (see the module docstring)")
    args = ap.parse_args()
    if args.pack:
        pack_mode(args.pack)
        return
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
