"""The attacks of issue 10 ("Why"), each tried by whoever can write the store: on sqlite (drop the triggers, edit
with SQL), on PostgreSQL as the schema owner (disable the triggers, edit) and as the append-only writer (forged
INSERTs), and on the S3 index objects. Each of these passed silently before: the queries trusted the store's columns,
verify stopped at the first failure, and nothing could tell a rewound or rolled-back store from a complete one."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import timedelta

import pytest

from ps019.errors import IntegrityError
from ps019.evidence import Signer, open_store, verify_store
from ps019.evidence.checkpoint import make_checkpoint, parse_checkpoint
from tests.plugins.evidence import make_record
from tests.test_breakglass_support import ALICE, KEYS, KNOWN_CONTROLS, STACK, T0, gate_settings, open_alice, who

SIGNER = Signer.generate()
TRUST = {SIGNER.keyid: SIGNER.public_key}


# --- the attacker's hands, per back end ------------------------------------------------------------------------


class SqliteHands:
    """Whoever can write the sqlite file: drops every trigger, then edits with plain SQL."""

    records, heads, ph = "records", "heads", "?"

    def __init__(self, path):
        self.con = sqlite3.connect(path, isolation_level=None)
        for (name,) in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            self.con.execute(f"DROP TRIGGER {name}")

    def sql(self, stmt, args=()):
        return self.con.execute(stmt.replace("%s", self.ph), args).fetchall()


class PgOwnerHands:
    """The PostgreSQL schema owner: disables the append-only triggers, then edits."""

    def __init__(self, dsn):
        import psycopg

        from ps019.evidence.pg_store import SCHEMA

        self.records, self.heads = f"{SCHEMA}.records", f"{SCHEMA}.heads"
        self.con = psycopg.connect(dsn, autocommit=True)
        for table in (self.records, self.heads):
            self.con.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")

    def sql(self, stmt, args=()):
        cur = self.con.execute(stmt, args)
        return cur.fetchall() if cur.description else []


def set_column(hands, record_id, column, value):
    hands.sql(f"UPDATE {hands.records} SET {column} = %s WHERE record_id = %s", (value, record_id))


def cut_tail(hands, chain, keep):
    """Delete a chain's newest records and rewind its head to match: a clean truncation."""
    (digest,), = [r for r in hands.sql(f"SELECT hash FROM {hands.records} WHERE chain_key = %s AND seq = %s",
                                       (chain, keep))]
    hands.sql(f"DELETE FROM {hands.records} WHERE chain_key = %s AND seq > %s", (chain, keep))
    hands.sql(f"UPDATE {hands.heads} SET seq = %s, hash = %s WHERE chain_key = %s", (keep, digest, chain))


@pytest.fixture(params=["sqlite", pytest.param("pg_owner", marks=pytest.mark.postgres)])
def target(request, tmp_path):
    """(store URL, a factory for the attacker's hands)."""
    if request.param == "sqlite":
        path = tmp_path / "evidence.db"
        return f"sqlite://{path}", lambda: SqliteHands(path)
    pg = request.getfixturevalue("pg_evidence")
    return pg.writer_dsn, lambda: PgOwnerHands(pg.owner_dsn)


def grant_check(store, now=T0 + timedelta(minutes=45)):
    from ps019.gate.breakglass import BreakGlassSettings, check_break_glass, load_break_glass_records

    records = load_break_glass_records(store, STACK)
    return check_break_glass(records, STACK, ALICE, now, gate_settings(), BreakGlassSettings(),
                             known_controls=KNOWN_CONTROLS)


def closed_grant(store):
    from ps019.gate.breakglass import close_grant

    grant = open_alice(store, SIGNER)
    close_grant(store, SIGNER, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gate_settings(),
                now=T0 + timedelta(minutes=30))
    close = next(s for s in store.iter_all() if s.document["kind"] == "break_glass_close")
    return grant, close


# --- index columns -----------------------------------------------------------------------------------------------


def test_a_closed_grant_is_not_reopened_by_editing_the_close_records_kind(target):
    url, hands = target
    with open_store(url) as store:
        store.trust(TRUST)
        _, close = closed_grant(store)
        assert not grant_check(store).valid  # closed: cannot be used
        set_column(hands(), close.record_id, "kind", "preview")
        with pytest.raises(IntegrityError, match=f"evidence record {close.record_id}: field kind"):
            grant_check(store)
        failures = verify_store(store, TRUST).failures
        assert [(f.record_id, f.field) for f in failures] == [(close.record_id, "kind")]


def test_a_close_moved_out_of_the_governance_chain_is_a_truncated_chain(target):
    url, hands = target
    with open_store(url) as store:
        store.trust(TRUST)
        _, close = closed_grant(store)
        set_column(hands(), close.record_id, "chain_key", STACK)
        with pytest.raises(IntegrityError, match="tail truncated"):
            grant_check(store)


def _emergency_population(store):
    """Four normal production updates and one emergency update under a break-glass grant."""
    from ps019.evidence import VerifiedReference

    grant = open_alice(store, SIGNER)
    for i in range(4):
        store.append(make_record(started_at=T0 + timedelta(minutes=i)), SIGNER)
    emergency = store.append(make_record(
        started_at=T0 + timedelta(minutes=10), change_class="emergency",
        break_glass=VerifiedReference(ref_id=grant.grant_id, kind="break_glass", verified=True)), SIGNER)
    opened = next(s for s in store.iter_all() if s.document["kind"] == "break_glass_open")
    return emergency, opened


def test_an_emergency_change_cannot_be_hidden_from_list_sample_report_or_break_glass_list(target):
    from ps019.evidence.report import compute_metrics, load_documents

    url, hands = target
    with open_store(url) as store:
        store.trust(TRUST)
        emergency, opened = _emergency_population(store)
        since, until = T0 - timedelta(days=1), T0 + timedelta(days=1)
        assert compute_metrics(load_documents(store, since, until), since=since, until=until).emergency_ratio == 0.2
        h = hands()
        set_column(h, emergency.record_id, "change_class", "normal")
        set_column(h, emergency.record_id, "break_glass", False if isinstance(h, PgOwnerHands) else 0)
        set_column(h, opened.record_id, "kind", "preview")
        named = f"evidence record {emergency.record_id}: field"
        with pytest.raises(IntegrityError, match=named):  # evidence list / report read the period
            store.summaries(since=since, until=until)
        with pytest.raises(IntegrityError, match=named):  # evidence sample's population
            store.query(environment="production", kind="update", since=since)
        with pytest.raises(IntegrityError, match=named):  # ps019 report
            load_documents(store, since, until)
        with pytest.raises(IntegrityError, match=f"evidence record {opened.record_id}: field kind"):
            grant_check(store)  # break-glass list and the pack read the grant ledger
        failures = verify_store(store, TRUST).failures
        assert {(f.record_id, f.field) for f in failures} == {
            (emergency.record_id, "change_class"), (emergency.record_id, "break_glass"), (opened.record_id, "kind")}


def test_swapped_documents_between_stacks_are_refused_and_both_reported(target):
    url, hands = target
    with open_store(url) as store:
        store.trust(TRUST)
        prod = store.append(make_record(stack="prod"), SIGNER)
        dev = store.append(make_record(stack="dev", environment="development"), SIGNER)
        h = hands()
        rows = {rid: h.sql(f"SELECT document, envelope FROM {h.records} WHERE record_id = %s", (rid,))[0]
                for rid in (prod.record_id, dev.record_id)}
        for rid, other in ((prod.record_id, dev.record_id), (dev.record_id, prod.record_id)):
            h.sql(f"UPDATE {h.records} SET document = %s, envelope = %s WHERE record_id = %s", (*rows[other], rid))
        with pytest.raises(IntegrityError, match="field record_id: indexed column record_id"):
            store.query(stack="acme/payments/prod")
        failures = verify_store(store, TRUST).failures
        assert {f.record_id for f in failures} == {prod.record_id, dev.record_id}
        assert {"chain_key", "stack", "record_id"} <= {f.field for f in failures}


# --- head rewind, truncation, rollback ---------------------------------------------------------------------------


def _checkpoint(store):
    return parse_checkpoint(make_checkpoint(store.url, verify_store(store, TRUST).chains, SIGNER, verified=True),
                            TRUST)


def test_head_rewind_and_truncation_pass_alone_and_fail_against_a_checkpoint(target):
    url, hands = target
    with open_store(url) as store:
        for _ in range(5):
            store.append(make_record(), SIGNER)
        cp = _checkpoint(store)
        cut_tail(hands(), "acme/payments/prod", 3)
        assert verify_store(store, TRUST).ok  # what the store says about itself is consistent ...
        result = verify_store(store, TRUST, checkpoints=[cp.chains])  # ... the checkpoint says otherwise
        assert [f.code for f in result.failures] == ["checkpoint"]
        assert "attests sequence 5 of chain acme/payments/prod but the store ends at sequence 3" in \
            result.failures[0].reason


def test_whole_store_rollback_fails_against_a_checkpoint(tmp_path):
    path = tmp_path / "evidence.db"
    with open_store(f"sqlite://{path}") as store:
        for _ in range(3):
            store.append(make_record(), SIGNER)
    shutil.copy(path, tmp_path / "backup.db")
    with open_store(f"sqlite://{path}") as store:
        for _ in range(2):
            store.append(make_record(stack="dev"), SIGNER)
        cp = _checkpoint(store)
    shutil.copy(tmp_path / "backup.db", path)  # restore the older copy of the whole store
    with open_store(f"sqlite://{path}") as store:
        assert verify_store(store, TRUST).ok
        result = verify_store(store, TRUST, checkpoints=[cp.chains])
        assert [(f.code, f.chain_key) for f in result.failures] == [("checkpoint", "acme/payments/dev")]


# --- PostgreSQL: the append-only writer ------------------------------------------------------------------------


@pytest.mark.postgres
def test_pg_writer_cannot_slip_a_replayed_document_under_forged_columns(pg_evidence):
    """The writer cannot UPDATE, but can INSERT a row that extends the head: here a copy of the grant's signed
    document under new columns, to make a second grant appear. The row's columns disagree with its document."""
    import psycopg

    from ps019.evidence.pg_store import SCHEMA

    with open_store(pg_evidence.writer_dsn) as store:
        store.trust(TRUST)
        open_alice(store, SIGNER)
        grant = next(s for s in store.iter_all())
        (seq, digest), = [v for k, v in store.heads().items() if k == grant.chain_key]
        with psycopg.connect(pg_evidence.writer_dsn, autocommit=True) as con:
            con.execute(f"INSERT INTO {SCHEMA}.records (record_id, chain_key, seq, prev_hash, hash, kind, stack, "
                        "environment, started_at, break_glass, has_violations, document, envelope) VALUES "
                        "('replayed', %s, %s, %s, %s, 'break_glass_open', %s, 'production', %s, true, false, %s, %s)",
                        (grant.chain_key, seq + 1, digest, "9" * 64, STACK, grant.document["started_at"],
                         json.dumps(grant.document), json.dumps(grant.envelope)))
        with pytest.raises(IntegrityError, match="field record_id: indexed column record_id is 'replayed'"):
            grant_check(store)
        fields = {f.field for f in verify_store(store, TRUST).failures}  # only the forged row is wrong
        assert {"record_id", "sequence", "hash", "prev_hash"} <= fields


# --- S3: the index objects ---------------------------------------------------------------------------------------


def _s3(url):
    import boto3

    from ps019.evidence.s3_store import S3Store

    store = open_store(url)
    assert isinstance(store, S3Store)
    return store, boto3.client("s3", endpoint_url=store._s3.meta.endpoint_url, region_name="us-east-1")


def test_s3_index_objects_are_checked_against_the_records(s3_evidence_url):
    store, s3 = _s3(s3_evidence_url)
    store.trust(TRUST)
    a = store.append(make_record(stack="prod"), SIGNER)
    b = store.append(make_record(stack="prod"), SIGNER)
    c = store.append(make_record(stack="prod"), SIGNER)
    cp = _checkpoint(store)
    bucket = store.bucket
    # 1. the ID pointer of a now points at b: `evidence show a` would display b
    s3.put_object(Bucket=bucket, Key=store._id_key(a.record_id),
                  Body=json.dumps({"chain_key": b.chain_key, "sequence": 2}).encode())
    got = store.get(a.record_id)
    from ps019.evidence.chain import record_problems

    assert ("column", "record_id") in {(code, name) for code, name, _ in record_problems(got, TRUST)}
    # 2. the head is rewound (the locked records behind it cannot be deleted)
    s3.put_object(Bucket=bucket, Key=store._head_key(a.chain_key),
                  Body=json.dumps({"sequence": 2, "hash": b.hash, "record_id": b.record_id}).encode())
    assert "head_rewound" in {f.code for f in verify_store(store, TRUST).failures}
    # 3. two record objects swapped between their sequence-numbered keys
    body = {r.sequence: s3.get_object(Bucket=bucket, Key=store._record_key(r.chain_key, r.sequence))["Body"].read()
            for r in (b, c)}
    s3.put_object(Bucket=bucket, Key=store._record_key(b.chain_key, 2), Body=body[3])
    s3.put_object(Bucket=bucket, Key=store._record_key(c.chain_key, 3), Body=body[2])
    with pytest.raises(IntegrityError, match="field sequence: indexed column sequence"):
        store.query(stack="prod")
    result = verify_store(store, TRUST, checkpoints=[cp.chains])
    found = {(f.record_id, f.code, f.field) for f in result.failures}
    assert (a.record_id, "column", "record_id") in found  # its pointer no longer names it
    assert (b.record_id, "column", "sequence") in found and (c.record_id, "column", "sequence") in found
    assert result.checkpoints_checked == 1 and not any(code == "checkpoint" for _, code, _ in found)  # all still there
