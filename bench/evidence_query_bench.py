"""Evidence query and verification benchmark (results: docs/benchmarks.md).

    .venv/bin/python bench/evidence_query_bench.py --store sqlite --records 1000000 --verify-at 10000,100000

What it measures, in one run against one store, side by side, for three filters (stack + one month, actor,
break-glass; each with the CLI's default ``limit=100`` and without a limit):

* **full scan** -- ``store.iter_all()``, every record decoded and matched in Python by the reference semantics
  (``Query.matches``): what a store without indexes would have to do, and the baseline of the >= 50x bar;
* **per-row** -- ``store.query``/``store.summaries`` with trusted keys and no verified index (what the pack does):
  every returned row's Ed25519 signature, document and indexed columns checked;
* **verified index** -- what ``ps019 evidence list/sample/export/report`` do (``ps019.evidence.verified``): answers
  from the reader's index of verified records, the store's columns cross-checked against it for every row of the
  answer's window (so an edited filter column is reported, not silently excluded), documents hash-compared. Timed
  cold once (the index is built: every record verified, like ``evidence verify``) and then warm (median).

Plus ``verify`` (``ps019.evidence.chain.verify_store``) at several population sizes, to show it is linear.

Records are generated through the store's real append path (seal, sign, chain, insert under BEGIN IMMEDIATE; on sqlite
``append_many``, which does exactly that for a batch in one transaction), so the rows are exactly what ``pulumi up``
leaves. The population is synthetic but shaped like a real one: 200 stacks, 40 actors, 3 tiers, ~2% break-glass,
~20% with policy results, timestamps spread over 12 months. Generation is resumable: re-running with the same --db
only appends the missing records. The verified index lives next to the store (``<db>.verified/``) and is rebuilt
from scratch in every run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sdk"))

STACKS = 200
ACTORS = 40
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=365)


def synthetic_record(i: int, total: int):
    from ps019.evidence import (Artifact, CiRun, EvidenceRecord, Identity, PolicyPackRef, PolicyResult, RecordKind,
                                ResourceChange, VerifiedReference)

    rnd = random.Random(i)
    stack_no = rnd.randrange(STACKS)
    tier = ("production", "staging", "development")[stack_no % 3]
    stack = f"{tier[:4]}-{stack_no:03d}"
    project = f"svc-{stack_no % 50:02d}"
    started = START + SPAN * (i / max(total, 1)) + timedelta(seconds=rnd.randrange(60))
    break_glass = rnd.random() < 0.02
    violations = rnd.random() < 0.2
    return EvidenceRecord(
        record_id=f"bench-{i:09d}", kind=RecordKind.UPDATE if rnd.random() < 0.6 else RecordKind.PREVIEW,
        organization="acme", project=project, stack=stack, environment=tier,
        started_at=started, ended_at=started + timedelta(seconds=30),
        change_class="emergency" if break_glass else "normal", outcome="succeeded",
        actor=Identity(id=f"arn:aws:sts::123456789012:assumed-role/deployer/ci-{rnd.randrange(ACTORS)}",
                       kind="aws-sts", verified=True, verified_by="sts:GetCallerIdentity"),
        ci=CiRun(provider="github-actions", run_url=f"https://ci.example/runs/{i}", commit=f"{i:040x}"),
        artifact=Artifact(git_commit=f"{i:040x}", source_digest=f"{i:064x}",
                          policy_pack=PolicyPackRef(name="ps019", version="0.1.0", code_digest="c" * 64)),
        resources=[ResourceChange(urn=f"urn:pulumi:{stack}::{project}::aws:s3/bucket:Bucket::b{k}",
                                  type="aws:s3/bucket:Bucket", op="update", inputs_digest=f"{k:064x}")
                   for k in range(3)],
        policy_results=[PolicyResult(control_id="PS019-IAM-001", level="advisory", message="broad")]
        if violations else [],
        break_glass=VerifiedReference(ref_id=f"G{i}", kind="break_glass", verified=True) if break_glass else None,
        change_request=f"CHG-{i}", rollback_plan="rb", monitoring_plan="mon",
    )


def populate(store, signer, total: int, report_every: int = 50_000, batch: int = 5_000) -> float:
    """Append through the store's real path. Where the store has ``append_many`` (sqlite), records go in batches:
    the same validation, sealing, chain and rows as one ``append`` per record, one transaction per batch."""
    have = store.count() if hasattr(store, "count") else sum(1 for _ in store.iter_all())
    t0 = time.perf_counter()
    step = batch if hasattr(store, "append_many") else 1
    for start in range(have, total, step):
        end = min(start + step, total)
        if step == 1:
            store.append(synthetic_record(start, total), signer)
        else:
            store.append_many([synthetic_record(i, total) for i in range(start, end)], signer)
        if end // report_every != start // report_every:
            rate = (end - have) / (time.perf_counter() - t0)
            print(f"  appended {end:,} ({rate:,.0f} rec/s)", flush=True)
    done = total - have
    return done / (time.perf_counter() - t0) if done else float("nan")


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def full_scan(store, **filters):
    from ps019.evidence.store import filters_to_query, index_facts

    q = filters_to_query(filters)
    hits = []
    for stored in store.iter_all():
        if q.matches(index_facts(stored.record)):
            hits.append(stored)
    return hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--url", help="postgresql://... for --store postgres")
    ap.add_argument("--db", default=str(ROOT / "scratch" / "bench-evidence.db"), help="sqlite file (kept for reuse)")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--verify-at", default="10000,100000",
                    help="population sizes for the verify timing (each <= --records; a separate store per size)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scan-repeat", type=int, default=1)
    args = ap.parse_args()

    from ps019.evidence import Signer, open_store
    from ps019.evidence.chain import verify_store
    from ps019.evidence.verified import VerifiedIndex

    key_path = Path(args.db).with_suffix(".key")
    key_path.parent.mkdir(parents=True, exist_ok=True)
    if key_path.exists():
        from ps019.evidence.signing import parse_private_key

        signer = Signer(parse_private_key(key_path.read_bytes(), str(key_path)))
    else:
        signer = Signer.generate()
        key_path.write_bytes(signer.private_key_pem())
    url = args.url if args.store == "postgres" else f"sqlite:///{args.db}"
    keys = {signer.keyid: signer.public_key}
    print(f"store {args.store}, target {args.records:,} records", flush=True)
    index_dir = Path(args.db).with_suffix(".verified")
    shutil.rmtree(index_dir, ignore_errors=True)
    with open_store(url) as store:
        store.trust(keys)  # what `ps019 evidence list` and the pack do: every signature checked
        rate = populate(store, signer, args.records)
        n = store.count() if hasattr(store, "count") else args.records
        print(f"populated: {n:,} records (append rate this run: {rate:,.0f} rec/s)")
        month = (datetime(2026, 6, 1, tzinfo=timezone.utc), datetime(2026, 7, 1, tzinfo=timezone.utc))
        cases = {
            "stack + one month": dict(stack="acme/svc-07/prod-057", since=month[0], until=month[1]),
            "actor": dict(actor="arn:aws:sts::123456789012:assumed-role/deployer/ci-7"),
            "break-glass": dict(break_glass=True),
        }
        per_row, scans = {}, {}
        for name, filters in cases.items():
            limited, _ = timed(lambda: store.summaries(**filters, limit=100), args.repeat)  # `evidence list`
            q_all, hits = timed(lambda: store.query(**filters), args.repeat)
            listed_t, listed = timed(lambda: store.summaries(**filters), args.repeat)  # `evidence list --limit 0`
            scan, scanned = timed(lambda: full_scan(store, **filters), args.scan_repeat)
            assert {r.record_id for r in scanned} == {r.record_id for r in hits} == {r["record_id"] for r in listed}
            per_row[name], scans[name] = (len(hits), limited, q_all, listed_t, listed), scan
            print(f"{name:18s} hits {len(hits):>7,}  per-row: list(limit 100) {limited * 1000:8.1f} ms  "
                  f"query(all) {q_all * 1000:9.1f} ms  list(all) {listed_t * 1000:9.1f} ms  full scan {scan:7.1f} s",
                  flush=True)
        index = VerifiedIndex.for_store(store, keys, directory=index_dir)
        store.use_verified_index(index)
        cold, added = timed(lambda: index.refresh(store), 1)
        print(f"verified index built: {added:,} records verified in {cold:.1f} s ({cold / max(added, 1) * 1e6:.0f} "
              "µs/record)", flush=True)
        indexed = {}
        for name, filters in cases.items():
            limited, _ = timed(lambda: store.summaries(**filters, limit=100), args.repeat)
            listed_t, listed = timed(lambda: store.summaries(**filters), args.repeat)
            q_all, hits = timed(lambda: store.query(**filters), args.repeat)
            assert listed == per_row[name][4] and len(hits) == per_row[name][0]
            indexed[name] = (limited, listed_t, q_all)
            print(f"{name:18s} indexed: list(limit 100) {limited * 1000:8.1f} ms  list(all) {listed_t * 1000:9.1f} ms"
                  f"  query(all) {q_all * 1000:9.1f} ms", flush=True)
    print(f"\nverified index built once: {cold:.1f} s for {added:,} records\n")
    print("| query | hits | full scan | per-row: `list` limit 100 / no limit | verified index: `list` limit 100 / "
          "no limit / `query` no limit | speed-up vs scan, index: `list` 100 / `list` all / `query` all |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in cases:
        hits, pr_limited, _pr_all, pr_list, _ = per_row[name]
        ix_limited, ix_list, ix_query = indexed[name]
        scan = scans[name]
        print(f"| {name} | {hits:,} | {scan:.1f} s | {pr_limited * 1000:.1f} ms / {pr_list * 1000:,.0f} ms | "
              f"{ix_limited * 1000:.1f} ms / {ix_list * 1000:,.1f} ms / {ix_query * 1000:,.0f} ms | "
              f"{scan / ix_limited:,.0f}x / {scan / ix_list:,.0f}x / {scan / ix_query:,.0f}x |")

    if args.store == "sqlite":
        print("\n| records | verify | per record |")
        print("|---:|---:|---:|")
        for size in sorted({int(s) for s in args.verify_at.split(",") if s}):
            size = min(size, args.records)
            db = Path(args.db).with_name(f"{Path(args.db).stem}-{size}.db") if size != args.records else Path(args.db)
            with open_store(f"sqlite:///{db}") as store:
                populate(store, signer, size)
                keys = {signer.keyid: signer.public_key}
                secs, result = timed(lambda: verify_store(store, keys), 1)
                assert result.ok, result.summary()
                print(f"| {size:,} | {secs:.2f} s | {secs / size * 1e6:.0f} µs |", flush=True)


if __name__ == "__main__":
    main()
