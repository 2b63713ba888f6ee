"""Every check `verify` makes has a test here (or in test_evidence_tamper.py) that fails when that check is removed:
each case breaks exactly one thing, so only that check can notice it."""

from __future__ import annotations

import base64
import copy
import json
import sqlite3
import tempfile

import pytest

from ps019.evidence import Signer, StoredRecord, open_store, verify_chain, verify_store
from ps019.evidence.signing import SPOOL_PREDICATE_TYPE
from ps019.evidence.store import COLUMNS
from tests.plugins.evidence import make_record

SIGNER = Signer.generate()
KEYS = {SIGNER.keyid: SIGNER.public_key}


def _store(n=4, path=None):
    path = path or f"{tempfile.mkdtemp()}/e.db"
    store = open_store(f"sqlite://{path}")
    for _ in range(n):
        store.append(make_record(stack="prod"), SIGNER)
    return store, path


@pytest.fixture(scope="module")
def chain():
    store, _ = _store()
    return list(store.iter_all()), store.heads()


def _codes(result):
    return [(f.code, f.field) for f in result.failures]


def test_spliced_branches_are_caught_only_by_the_prev_hash_link():
    """Two validly signed branches of the same chain spliced together (as after restoring a backup and appending):
    every signature, hash, sequence and column is right; only the prev_hash link shows the splice."""
    a, _ = _store(6)
    b, _ = _store(6)
    rows = list(a.iter_all())[:3] + list(b.iter_all())[3:]
    result = verify_chain(rows, KEYS)
    assert _codes(result) == [("fork", "prev_hash")]
    assert result.failures[0].record_id == rows[3].record_id and result.failures[0].sequence == 4


def _resign(stored, doc, predicate_type=None, digest=None):
    from ps019.evidence.signing import PREDICATE_TYPE

    env = SIGNER.sign_statement(doc["record_id"], digest or doc["hash"], doc,
                                predicate_type=predicate_type or PREDICATE_TYPE)
    return StoredRecord(document=doc, envelope=env)


def test_a_statement_of_another_type_is_refused(chain):
    rows, _ = chain
    rows = [copy.deepcopy(r) for r in rows]
    rows[1] = _resign(rows[1], rows[1].document, predicate_type=SPOOL_PREDICATE_TYPE)
    assert _codes(verify_chain(rows, KEYS)) == [("signature", "envelope")]


def test_a_statement_whose_subject_names_another_hash_is_refused(chain):
    rows = [copy.deepcopy(r) for r in chain[0]]
    rows[2] = _resign(rows[2], rows[2].document, digest="f" * 64)
    assert _codes(verify_chain(rows, KEYS)) == [("edited", "subject")]


def test_a_signed_record_whose_hash_does_not_match_its_content_is_refused(chain):
    """The signer signed a document whose own hash field is wrong (edited before signing): only recomputing the
    hash notices; the next record links to the wrong hash as signed, so the chain itself is intact."""
    rows = [copy.deepcopy(r) for r in chain[0]][:1]
    doc = dict(rows[0].document, outcome="failed")  # content changed, hash field kept, then signed
    rows[0] = _resign(rows[0], doc)
    result = verify_chain(rows, KEYS)
    assert _codes(result) == [("edited", "hash")]


def test_a_row_that_is_not_a_record_is_reported_and_the_rest_still_checked(chain):
    rows = [copy.deepcopy(r) for r in chain[0]]
    rows.insert(2, StoredRecord(document={"chain_key": rows[0].chain_key, "sequence": 99}, envelope={}))
    result = verify_chain(rows, KEYS)
    assert [f.code for f in result.failures] == ["malformed"] and result.records_checked == 4


def test_a_head_whose_hash_differs_from_the_last_record(chain):
    rows, heads = chain
    (key, (seq, _)), = heads.items()
    assert _codes(verify_chain(rows, KEYS, heads={key: (seq, "e" * 64)})) == [("fork", None)]


def test_a_chain_that_runs_past_its_recorded_head_is_a_rewound_head(chain):
    rows, heads = chain
    (key, (seq, _)), = heads.items()
    result = verify_chain(rows, KEYS, heads={key: (seq - 1, rows[-2].hash)})
    assert _codes(result) == [("head_rewound", None)]
    assert _codes(verify_chain(rows, KEYS, heads={})) == [("head_rewound", None)]  # head row deleted


def test_checkpoint_anchor_missing_and_anchor_hash_differs(chain):
    rows, heads = chain
    (key, (seq, digest)), = heads.items()
    # the store lost its last record (and its head with it): only the checkpoint knows
    result = verify_chain(rows[:-1], KEYS, heads={key: (seq - 1, rows[-2].hash)}, checkpoints=[heads])
    assert _codes(result) == [("checkpoint", None)] and f"attests sequence {seq}" in result.failures[0].reason
    # the record at the attested sequence is another one (chain rewritten from there)
    result = verify_chain(rows, KEYS, heads=heads, checkpoints=[{key: (seq, "a" * 64)}])
    assert _codes(result) == [("checkpoint", "hash")]
    # two checkpoints that disagree with each other
    result = verify_chain(rows, KEYS, heads=heads, checkpoints=[heads, {key: (seq, "b" * 64)}])
    assert ("checkpoint", None) in _codes(result)


def test_verify_reports_every_failure_not_only_the_first(tmp_path):
    store, path = _store(6, str(tmp_path / "e.db"))
    rows = list(store.iter_all())
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER records_no_update")
    doc = dict(rows[1].document, change_class="standard")
    con.execute("UPDATE records SET document = ? WHERE record_id = ?", (json.dumps(doc), rows[1].record_id))
    con.execute("UPDATE records SET environment = 'development' WHERE record_id = ?", (rows[4].record_id,))
    con.commit()
    result = verify_store(store, KEYS)
    assert [(f.record_id, f.code, f.field) for f in result.failures] == [
        (rows[1].record_id, "edited", "change_class"),
        (rows[1].record_id, "column", "change_class"),  # the column now disagrees with the edited document too
        (rows[4].record_id, "column", "environment")]
    assert result.records_checked == 6


_EDITS = {"record_id": "'forged-id'", "chain_key": "'acme/payments/dev'", "sequence": "seq + 1000",
          "prev_hash": "'" + "1" * 64 + "'", "hash": "'" + "2" * 64 + "'", "kind": "'preview'",
          "stack": "'acme/payments/dev'", "environment": "'development'", "change_class": "'standard'",
          "actor": "'someone-else'", "started_at": "'2020-01-01T00:00:00.000000Z'", "break_glass": "1",
          "has_violations": "0"}


@pytest.mark.parametrize("column", COLUMNS)
def test_every_indexed_column_is_checked_against_the_signed_document(tmp_path, column):
    store, path = _store(3, str(tmp_path / "e.db"))
    victim = list(store.iter_all())[1]
    con = sqlite3.connect(path)
    for trigger in ("records_no_update", "heads_forward_only"):
        con.execute(f"DROP TRIGGER {trigger}")
    sql_column = "seq" if column == "sequence" else column
    con.execute(f"UPDATE records SET {sql_column} = {_EDITS[column]} WHERE record_id = ?", (victim.record_id,))
    con.commit()
    result = verify_store(store, KEYS)
    fields = {(f.code, f.field) for f in result.failures if f.record_id in (victim.record_id, "forged-id")}
    assert ("column", column) in fields, result.failures


def test_every_column_case_exists():
    assert set(_EDITS) == set(COLUMNS)


def test_an_envelope_that_is_not_a_statement_is_refused_by_queries_without_keys(tmp_path):
    """Queries of a store without trusted keys still refuse a document that is not what its envelope carries."""
    from ps019.errors import IntegrityError

    store, path = _store(2, str(tmp_path / "e.db"))
    victim = list(store.iter_all())[0]
    env = dict(victim.envelope, payload=base64.b64encode(b"not json").decode())
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER records_no_update")
    con.execute("UPDATE records SET envelope = ? WHERE record_id = ?", (json.dumps(env), victim.record_id))
    con.commit()
    with pytest.raises(IntegrityError, match=f"evidence record {victim.record_id}: field envelope"):
        store.query(stack="prod")




class _ListedBeforeAppends:
    """A store without consistent snapshots (as S3) whose listing ran before writers appended ``later`` and whose
    head was read after: what `verify` sees when it runs during appends."""

    consistent_snapshots = False

    def __init__(self, store, listed):
        self._store, self._listed = store, listed

    def iter_all(self, stack=None):
        return iter(self._listed)

    def heads(self):
        return self._store.heads()

    def iter_chain(self, chain, after=0):
        return self._store.iter_chain(chain, after)


@pytest.mark.parametrize("listed_before", [0, 2])
def test_records_appended_while_verify_lists_an_s3_like_store_are_not_a_truncation(listed_before):
    """The concurrency test's flake: a verify that listed the chain before its first record (or mid-way) and read
    the head after the writers moved it is not a truncated tail, when the store now holds the linked records."""
    store, _ = _store(4)
    listed = list(store.iter_all())[:listed_before]
    assert verify_store(_ListedBeforeAppends(store, listed), KEYS).ok


def test_a_tail_really_cut_from_an_s3_like_store_is_still_a_truncation():
    store, path = _store(4)
    listed = list(store.iter_all())[:2]
    con = sqlite3.connect(path, isolation_level=None)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("DELETE FROM records WHERE seq > 2")
    result = verify_store(_ListedBeforeAppends(store, listed), KEYS)
    assert [f.code for f in result.failures] == ["truncated"]
