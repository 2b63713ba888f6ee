"""Completeness of filtered answers (issue 10, part A item 3) and the reader's verified index that makes them fast.

The attack: whoever can write the store edits a *filter* column -- ``break_glass`` flipped to 0, ``kind`` or
``environment`` changed -- so that ``evidence list --break-glass`` (or ``--kind``, ``--environment``, ``--stack``)
simply does not see the record. Checking each returned row cannot notice a row that is not returned. With the
verified index the answer comes from verified facts and the store's columns are cross-checked against them, so the
edit is reported, naming the record and the column. Each attack is shown to succeed without the index first.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from ps019.errors import IntegrityError
from ps019.evidence import Signer, VerifiedReference, open_store, verify_store
from ps019.evidence.verified import VerifiedIndex
from tests.plugins.evidence import make_record
from tests.test_audit_cli import _reset_logging, run  # noqa: F401 - the CLI's logging reset, per test
from tests.test_breakglass_support import T0
from tests.test_evidence_attacks import PgOwnerHands, SqliteHands, cut_tail, set_column, target  # noqa: F401

SIGNER = Signer.generate()
TRUST = {SIGNER.keyid: SIGNER.public_key}
PROD = "acme/payments/prod"


def indexed(store, tmp_path):
    store.trust(TRUST)
    return store.use_verified_index(VerifiedIndex.for_store(store, directory=tmp_path / "verified"))


def per_row(url):
    """The same store, read the old way: each returned row checked, nothing else."""
    return open_store(url).trust(TRUST)


def _population(store):
    """Six production updates, one of them an emergency under break-glass; two development previews."""
    out = [store.append(make_record(started_at=T0 + timedelta(minutes=i)), SIGNER) for i in range(5)]
    emergency = store.append(make_record(started_at=T0 + timedelta(minutes=10), change_class="emergency",
                                         break_glass=VerifiedReference(ref_id="G-1", kind="break_glass",
                                                                       verified=True)), SIGNER)
    for i in range(2):
        store.append(make_record(kind="preview", stack="dev", environment="development",
                                 started_at=T0 + timedelta(minutes=20 + i)), SIGNER)
    return out, emergency


def _false(hands):
    return False if isinstance(hands, PgOwnerHands) else 0


@pytest.mark.parametrize("column, value, filters", [
    ("break_glass", None, {"break_glass": True}),  # evidence list --break-glass
    ("kind", "preview", {"kind": "update"}),  # evidence sample --kind update
    ("environment", "development", {"environment": "production"}),  # --environment production
    ("stack", "acme/payments/dev", {"stack": PROD}),  # --stack
    ("change_class", "normal", {"change_class": "emergency"}),  # --change-class emergency
])
def test_an_edited_filter_column_cannot_hide_a_record(target, tmp_path, column, value, filters):  # noqa: F811
    url, hands = target
    with open_store(url) as store:
        _, emergency = _population(store)
        h = hands()
        set_column(h, emergency.record_id, column, _false(h) if value is None else value)
        # the attack, read row by row: the record is silently missing from the answer
        with per_row(url) as old:
            assert emergency.record_id not in {s["record_id"] for s in old.summaries(**filters)}
        indexed(store, tmp_path)
        with pytest.raises(IntegrityError, match=f"evidence record {emergency.record_id}: field {column}: indexed "
                                                 f"column {column} is .* but the signed document says"):
            store.summaries(**filters)
        with pytest.raises(IntegrityError, match=f"evidence record {emergency.record_id}: field {column}"):
            store.query(**filters)


def test_an_edited_filter_column_cannot_add_a_record_either(target, tmp_path):  # noqa: F811
    url, hands = target
    with open_store(url) as store:
        normal, _ = _population(store)
        h = hands()
        set_column(h, normal[0].record_id, "break_glass", True if isinstance(h, PgOwnerHands) else 1)
        indexed(store, tmp_path)
        with pytest.raises(IntegrityError, match=f"evidence record {normal[0].record_id}: field break_glass"):
            store.summaries(break_glass=True)


def test_a_record_verified_earlier_and_edited_later_is_refused(target, tmp_path):  # noqa: F811
    url, hands = target
    with open_store(url) as store:
        _, emergency = _population(store)
        indexed(store, tmp_path)
        assert [s["record_id"] for s in store.summaries(break_glass=True)] == [emergency.record_id]
        h = hands()  # now the document itself is edited (its columns left alone)
        (doc,), = h.sql(f"SELECT document FROM {h.records} WHERE record_id = %s", (emergency.record_id,))
        h.sql(f"UPDATE {h.records} SET document = %s WHERE record_id = %s",
              (doc.replace('"emergency"', '"normal"', 1), emergency.record_id))
        with pytest.raises(IntegrityError, match=f"evidence record {emergency.record_id}: field change_class: "
                                                 "stored record differs from what was signed"):
            store.query(break_glass=True)


def test_a_deleted_record_is_reported_even_though_its_chain_head_was_left_alone(target, tmp_path):  # noqa: F811
    url, hands = target
    with open_store(url) as store:
        normal, _ = _population(store)
        indexed(store, tmp_path)
        assert len(store.summaries(stack=PROD)) == 6
        hands().sql("DELETE FROM {} WHERE record_id = %s".format(hands().records), (normal[2].record_id,))
        with pytest.raises(IntegrityError, match=f"evidence record {normal[2].record_id}: field record_id: verified "
                                                 "earlier as chain acme/payments/prod #3 but no longer in the store"):
            store.summaries(stack=PROD)


def test_a_rollback_behind_what_this_reader_verified_is_refused(target, tmp_path):  # noqa: F811
    """Delete the newest records and rewind the head: without a checkpoint ``verify`` cannot tell, but a reader who
    verified the chain before remembers how far it went (like a CT client remembering the last tree head)."""
    url, hands = target
    with open_store(url) as store:
        _population(store)
        indexed(store, tmp_path)
        assert len(store.summaries()) == 8
        cut_tail(hands(), PROD, 4)
        assert verify_store(store, TRUST).ok  # the store alone looks complete
        with pytest.raises(IntegrityError, match=f"evidence chain {PROD}: this reader verified it up to sequence 6, "
                                                 "but its head is at sequence 4: records were removed or the store "
                                                 "was rolled back"):
            store.summaries()


@pytest.mark.postgres
def test_pg_writer_forged_row_is_refused_by_the_index(pg_evidence, tmp_path):
    """The append-only writer INSERTs a row that extends the head, a replayed signed document under forged columns
    (kind=break_glass_open, break_glass): the refresh verifies it before anything counts it."""
    import json

    import psycopg

    from ps019.evidence.pg_store import SCHEMA

    with open_store(pg_evidence.writer_dsn) as store:
        _, emergency = _population(store)
        seq, digest = store.heads()[PROD]
        with psycopg.connect(pg_evidence.writer_dsn, autocommit=True) as con:
            con.execute(f"INSERT INTO {SCHEMA}.records (record_id, chain_key, seq, prev_hash, hash, kind, stack, "
                        "environment, started_at, break_glass, has_violations, document, envelope) VALUES "
                        "('forged', %s, %s, %s, %s, 'update', %s, 'production', %s, true, false, %s, %s)",
                        (PROD, seq + 1, digest, "9" * 64, PROD, emergency.document["started_at"],
                         json.dumps(emergency.document), json.dumps(emergency.envelope)))
        indexed(store, tmp_path)
        with pytest.raises(IntegrityError, match="field record_id: indexed column record_id is 'forged'"):
            store.summaries(break_glass=True)


# --- the index gives the same answers as the per-row path ---------------------------------------------------------


@pytest.mark.parametrize("filters", [{}, {"limit": 3}, {"stack": "prod"}, {"stack": PROD, "limit": 2},
                                     {"environment": "development"}, {"kind": "preview"}, {"break_glass": True},
                                     {"since": T0 + timedelta(minutes=3), "until": T0 + timedelta(minutes=21)},
                                     {"actor": "arn:aws:sts::123456789012:assumed-role/deployer/ci-1", "limit": 1},
                                     {"with_violations": True, "limit": 7}])
def test_indexed_answers_equal_the_per_row_answers(tmp_path, filters):
    url = f"sqlite://{tmp_path / 'e.db'}"
    with open_store(url) as store:
        _population(store)
        with per_row(url) as old:
            want_summaries, want_records = old.summaries(**filters), old.query(**filters)
        indexed(store, tmp_path)
        for _ in range(2):  # cold (verifies), then warm (hash compares only)
            assert store.summaries(**filters) == want_summaries
            assert store.query(**filters) == want_records


def test_a_limit_that_cuts_through_equal_timestamps_is_not_a_false_alarm(tmp_path):
    url = f"sqlite://{tmp_path / 'e.db'}"
    with open_store(url) as store:
        for i in range(6):
            store.append(make_record(stack=f"s{i % 3}", started_at=T0), SIGNER)
        indexed(store, tmp_path)
        for limit in (1, 2, 4):
            assert len(store.summaries(limit=limit)) == limit


def test_the_index_only_verifies_what_is_new(tmp_path, monkeypatch):
    url = f"sqlite://{tmp_path / 'e.db'}"
    with open_store(url) as store:
        _population(store)
        index = VerifiedIndex.for_store(store.trust(TRUST), directory=tmp_path / "verified")
        assert index.refresh(store) == 8
        assert index.refresh(store) == 0
        store.append(make_record(), SIGNER)
        assert index.refresh(store) == 1
    # a new process (a new index object on the same file) starts from what was verified
    with open_store(url) as store:
        index = VerifiedIndex.for_store(store.trust(TRUST), directory=tmp_path / "verified")
        assert index.refresh(store) == 0


def test_the_index_is_per_key_set_and_refuses_records_by_other_keys(tmp_path):
    url = f"sqlite://{tmp_path / 'e.db'}"
    other = Signer.generate()
    with open_store(url) as store:
        _population(store)
        stranger = store.append(make_record(), other)
        a = VerifiedIndex.for_store(store.trust(TRUST), directory=tmp_path / "verified")
        b = VerifiedIndex.for_store(store.trust({other.keyid: other.public_key}), directory=tmp_path / "verified")
        assert a.path != b.path and a.path.parent == b.path.parent
        with pytest.raises(IntegrityError, match=f"evidence record {stranger.record_id}: field signature"):
            a.refresh(store)


def test_the_index_lives_outside_the_store_with_owner_only_permissions(tmp_path):
    url = f"sqlite://{tmp_path / 'store' / 'e.db'}"
    with open_store(url) as store:
        _population(store)
        index = VerifiedIndex.for_store(store.trust(TRUST), directory=tmp_path / "reader" / "verified")
        index.refresh(store)
        assert index.path.stat().st_mode & 0o077 == 0 and index.path.parent.stat().st_mode & 0o077 == 0
        names = {r[0] for r in sqlite3.connect(tmp_path / "store" / "e.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert names == {"records", "heads"}  # nothing of the reader's in the store


@pytest.mark.moto
def test_s3_head_rewound_behind_what_the_reader_verified(s3_evidence_url, tmp_path):
    import json

    import boto3

    with open_store(s3_evidence_url) as store:
        records = [store.append(make_record(), SIGNER) for _ in range(3)]
        indexed(store, tmp_path)
        assert [s["record_id"] for s in store.summaries()] == [r.record_id for r in reversed(records)]
        assert store.query(limit=1)[0].record_id == records[-1].record_id
        s3 = boto3.client("s3", endpoint_url=store._s3.meta.endpoint_url, region_name="us-east-1")
        s3.put_object(Bucket=store.bucket, Key=store._head_key(PROD),
                      Body=json.dumps({"sequence": 2, "hash": records[1].hash,
                                       "record_id": records[1].record_id}).encode())
        with pytest.raises(IntegrityError, match="this reader verified it up to sequence 3, but its head is at "
                                                 "sequence 2"):
            store.summaries()


# --- the CLI -----------------------------------------------------------------------------------------------------


def test_cli_list_break_glass_names_the_record_whose_column_was_flipped(tmp_path, evidence_home, capsys,
                                                                       monkeypatch):
    from ps019.evidence import load_signer

    url = f"sqlite://{tmp_path / 'e.db'}"
    signer = load_signer()
    with open_store(url) as store:
        for i in range(3):
            store.append(make_record(started_at=T0 + timedelta(minutes=i)), signer)
        emergency = store.append(make_record(change_class="emergency", started_at=T0 + timedelta(minutes=9),
                                             break_glass=VerifiedReference(ref_id="G-1", kind="break_glass",
                                                                           verified=True)), signer)
    capsys.readouterr()
    code, out, _ = run(capsys, "evidence", "list", "--store", url, "--break-glass", "--format", "json")
    assert code == 0 and emergency.record_id in out
    con = sqlite3.connect(tmp_path / "e.db", isolation_level=None)
    con.execute("DROP TRIGGER records_no_update")
    con.execute("UPDATE records SET break_glass = 0 WHERE record_id = ?", (emergency.record_id,))
    code, out, err = run(capsys, "evidence", "list", "--store", url, "--break-glass", "--limit", "0")
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith(f"ps019: error: evidence record {emergency.record_id}: field "
                                                   "break_glass: indexed column break_glass is false but the "
                                                   "signed document says true")


def test_cli_verify_fills_the_index_so_list_verifies_nothing_again(tmp_path, evidence_home, capsys, monkeypatch):
    from ps019.evidence import load_signer
    from ps019.evidence import verified

    monkeypatch.setattr(verified, "NOTICE_AFTER", 1)
    url = f"sqlite://{tmp_path / 'e.db'}"
    with open_store(url) as store:
        for _ in range(3):
            store.append(make_record(), load_signer())
    capsys.readouterr()
    code, out, err = run(capsys, "evidence", "verify", "--store", url)
    assert code == 0 and "verifying" not in err
    code, out, err = run(capsys, "evidence", "list", "--store", url)
    assert code == 0 and "verifying" not in err and "3 evidence record(s)" in out
    with open_store(url) as store:
        store.append(make_record(), load_signer())
    code, out, err = run(capsys, "evidence", "list", "--store", url)
    assert code == 0 and "verifying 1 record(s) this reader has not verified before" in err


def test_appends_racing_a_query_are_verified_not_reported(tmp_path, monkeypatch):
    """A writer appends between the index's refresh and the store's selection (or while the refresh reads a chain):
    the new record is verified and answered, never mistaken for tampering."""
    url = f"sqlite://{tmp_path / 'e.db'}"
    with open_store(url) as store:
        _population(store)
        indexed(store, tmp_path)
        assert len(store.summaries()) == 8
        select_rows, heads = store.select_rows, store.heads
        racing = []

        def select_after_an_append(q, **kw):
            if not racing:
                racing.append(store.append(make_record(started_at=T0 + timedelta(hours=1)), SIGNER))
            return select_rows(q, **kw)

        monkeypatch.setattr(store, "select_rows", select_after_an_append)
        assert [s["record_id"] for s in store.summaries(limit=1)] == [racing[0].record_id]
        monkeypatch.setattr(store, "select_rows", select_rows)
        stale = heads()  # the heads as read just before another append lands
        store.append(make_record(), SIGNER)
        calls = iter([stale])
        monkeypatch.setattr(store, "heads", lambda: next(calls, None) or heads())
        assert len(store.summaries()) == 10
