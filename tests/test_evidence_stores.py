"""The same contract on every store (sqlite, S3 on moto, PostgreSQL 15), plus each store's own immutability."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ps019.errors import StoreError
from ps019.evidence import open_store, verify_store
from tests.plugins.evidence import make_record


@pytest.fixture(params=["sqlite", pytest.param("s3", marks=pytest.mark.moto),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'e.db'}"
    if request.param == "s3":
        return request.getfixturevalue("s3_evidence_url")
    return request.getfixturevalue("pg_evidence").writer_dsn


def test_store_contract(store_url, evidence_signer):
    keys = {evidence_signer.keyid: evidence_signer.public_key}
    with open_store(store_url) as store:
        a = [store.append(make_record(stack="prod", started_at=datetime(2026, 1, i + 1, tzinfo=timezone.utc)),
                          evidence_signer) for i in range(3)]
        b = store.append(make_record(stack="dev", environment="development", policy_results=[],
                                     started_at=datetime(2026, 2, 1, tzinfo=timezone.utc)), evidence_signer)
        assert [r.sequence for r in a] == [1, 2, 3] and b.sequence == 1
        assert store.append(make_record(record_id=a[1].record_id), evidence_signer).hash == a[1].hash  # idempotent
        assert store.get(a[2].record_id).document == a[2].document
        assert store.get("no-such-id") is None and store.contains(a[0].record_id)
        assert [r.sequence for r in store.iter_all("acme/payments/prod")] == [1, 2, 3]
        assert store.heads() == {"acme/payments/prod": (3, a[2].hash), "acme/payments/dev": (1, b.hash)}
        assert verify_store(store, keys).ok
        assert verify_store(store, keys, stack="acme/payments/dev").records_checked == 1
        assert [r.record_id for r in store.query(stack="prod", limit=2)] == [a[2].record_id, a[1].record_id]
        assert [r.record_id for r in store.query(environment="development")] == [b.record_id]
        assert len(store.query(with_violations=True)) == 3
        assert len(store.query(since=datetime(2026, 1, 2, tzinfo=timezone.utc),
                               until=datetime(2026, 2, 1, tzinfo=timezone.utc))) == 2
        assert store.query(break_glass=True) == []


@pytest.mark.postgres
def test_postgres_writer_can_only_append(pg_evidence, evidence_signer):
    import psycopg

    from ps019.evidence.pg_store import SCHEMA

    with open_store(pg_evidence.writer_dsn) as store:
        stored = store.append(make_record(), evidence_signer)
    with psycopg.connect(pg_evidence.writer_dsn, autocommit=True) as con:
        for sql in (f"UPDATE {SCHEMA}.records SET environment='x'", f"DELETE FROM {SCHEMA}.records",
                    f"TRUNCATE {SCHEMA}.records", f"UPDATE {SCHEMA}.heads SET seq=0", f"DELETE FROM {SCHEMA}.heads"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute(sql)
        # a forged INSERT that does not extend the head is refused by the database
        with pytest.raises(psycopg.errors.SerializationFailure):
            con.execute(f"INSERT INTO {SCHEMA}.records (record_id, chain_key, seq, prev_hash, hash, kind, stack, "
                        "environment, started_at, break_glass, has_violations, document, envelope) VALUES "
                        f"('x', %s, 7, 'p', 'h', 'update', 's', 'e', 't', false, false, '{{}}', '{{}}')",
                        (stored.chain_key,))
    # even the owner is stopped by the triggers
    with psycopg.connect(pg_evidence.owner_dsn, autocommit=True) as con:
        for sql in (f"UPDATE {SCHEMA}.records SET environment='x'", f"DELETE FROM {SCHEMA}.records",
                    f"TRUNCATE {SCHEMA}.records", f"UPDATE {SCHEMA}.heads SET seq=0"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only|forward"):
                con.execute(sql)
    with psycopg.connect(pg_evidence.auditor_dsn, autocommit=True) as con:
        assert con.execute(f"SELECT count(*) FROM {SCHEMA}.records").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute(f"INSERT INTO {SCHEMA}.heads VALUES ('x', 1, 'h')")


@pytest.mark.postgres
def test_postgres_unreachable_is_one_line_without_credentials(pg_cluster):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as err:
        open_store(f"postgresql://writer:hunter2-pw@127.0.0.1:{port}/evidence")
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "hunter2-pw" not in msg and "\n" not in msg


@pytest.mark.postgres
def test_postgres_schema_missing(pg_cluster):
    import psycopg

    with psycopg.connect(pg_cluster.superuser_dsn, autocommit=True) as con:
        con.execute("DROP DATABASE IF EXISTS empty_db")
        con.execute("CREATE DATABASE empty_db")
    with pytest.raises(StoreError, match="not installed"):
        open_store(pg_cluster.dsn("evidence_writer", "empty_db")).get("x")


@pytest.mark.moto
def test_s3_objects_are_locked_and_never_overwritten(s3_evidence_url, evidence_signer):
    import boto3
    from botocore.exceptions import ClientError

    from ps019.evidence.s3_store import S3Store

    store = open_store(s3_evidence_url)
    stored = store.append(make_record(), evidence_signer)
    assert isinstance(store, S3Store)
    s3 = boto3.client("s3")
    key = store._record_key(stored.chain_key, 1)
    head = s3.head_object(Bucket=store.bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"].year >= 2033
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket=store.bucket, Key=key, Body=b"{}", IfNoneMatch="*")
    version = head["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=store.bucket, Key=key, VersionId=version)


@pytest.mark.moto
def test_s3_completes_a_crashed_append(s3_evidence_url, evidence_signer):
    """A writer that stored the record object but died before moving the head: the next append finishes it."""
    from ps019.evidence.store import seal, validated_record

    store = open_store(s3_evidence_url)
    first = store.append(make_record(), evidence_signer)
    orphan_rec = validated_record(make_record())
    orphan = seal(orphan_rec, evidence_signer, first.chain_key, 1, first.hash)
    store._put_new(store._record_key(first.chain_key, 2), orphan.to_json().encode())  # then "crash"
    third = store.append(make_record(), evidence_signer)
    assert third.sequence == 3 and store.get(orphan.record_id).sequence == 2
    assert verify_store(store, {evidence_signer.keyid: evidence_signer.public_key}).ok
    # and re-appending the orphan (e.g. from a spool) is a no-op
    assert store.append(orphan_rec, evidence_signer).sequence == 2


@pytest.mark.moto
def test_s3_unreachable_is_store_error(monkeypatch, evidence_signer):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "t")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(StoreError, match="unreachable"):
        open_store("s3://nowhere-bucket/x").append(make_record(), evidence_signer)


def test_list_summaries_are_the_records_own_summaries(store_url, evidence_signer):
    """`ps019 evidence list` reads a projection of indexed columns (no record decoded); it must say exactly what
    the records say, for deployments and governance events alike, under every filter."""
    from datetime import datetime, timedelta, timezone

    from ps019.evidence import BreakGlassOpenPayload, EvidenceRecord, Identity, VerifiedReference
    from ps019.evidence.store import record_summary
    from tests.plugins.evidence import make_record

    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    grant = EvidenceRecord(kind="break_glass_open", organization="acme", project="payments", stack="prod",
                           environment="production", started_at=now, payload=BreakGlassOpenPayload(
                               grant_id="BG-1", operator=Identity(id="olivia"), reason="r", incident="INC-1",
                               opened_at=now, expires_at=now + timedelta(hours=1)))
    records = [make_record(), make_record(kind="preview", policy_results=[]), grant,
               make_record(change_class="emergency", break_glass=VerifiedReference(
                   ref_id="BG-1", kind="break_glass", verified=True))]
    with open_store(store_url) as store:
        for r in records:
            store.append(r, evidence_signer)
        for filters in ({}, {"break_glass": True}, {"kind": "update"}, {"stack": "acme/payments/prod", "limit": 2},
                        {"actor": "olivia"}):
            expected = [record_summary(s.document) for s in store.query(**filters)]
            assert store.summaries(**filters) == expected, filters


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_append_many_equals_single_appends(backend, request, tmp_path, evidence_signer):
    """The batch path (spool flush, migrations, benchmarks) writes exactly the records single appends write."""
    from tests.plugins.evidence import make_record

    records = [make_record() for _ in range(4)]
    with open_store(f"sqlite://{tmp_path / 'one.db'}") as store:
        singles = [store.append(r, evidence_signer) for r in records]
    many = (f"sqlite://{tmp_path / 'many.db'}" if backend == "sqlite"
            else request.getfixturevalue("pg_evidence").writer_dsn)
    with open_store(many) as store:
        batch = store.append_many(records, evidence_signer)
        assert [s.document for s in singles] == [b.document for b in batch]
        assert store.append_many(records[:1], evidence_signer)[0].document == singles[0].document  # idempotent
