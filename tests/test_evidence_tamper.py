"""Tampering with stored evidence is detected by verify_chain, and the FIRST broken record is named."""

from __future__ import annotations

import base64
import copy
import json
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ps019.evidence import Signer, StoredRecord, open_store, record_hash, verify_chain, verify_store
from tests.plugins.evidence import make_record

SIGNER = Signer.generate()
KEYS = {SIGNER.keyid: SIGNER.public_key}


def _chain(tmp_path_factory=None, n=6):
    import tempfile

    d = tempfile.mkdtemp()
    store = open_store(f"sqlite://{d}/e.db")
    for i in range(n):
        store.append(make_record(stack="prod" if i % 3 else "dev"), SIGNER)
    return store


@pytest.fixture(scope="module")
def chain_store():
    return _chain()


@pytest.fixture
def records(chain_store):
    return [copy.deepcopy(r) for r in chain_store.iter_all()]


def _with_doc(rec: StoredRecord, doc) -> StoredRecord:
    return StoredRecord(document=doc, envelope=rec.envelope)


def test_intact_chain_verifies(chain_store):
    res = verify_store(chain_store, KEYS)
    assert res.ok and res.records_checked == 6 and len(res.chains) == 2


def test_edited_field_named(records):
    target = records[3]
    doc = copy.deepcopy(target.document)
    doc["environment"] = "development"
    records[3] = _with_doc(target, doc)
    res = verify_chain(records, KEYS)
    assert not res.ok and res.first_failure.record_id == target.record_id
    assert res.first_failure.code == "edited" and "environment" in res.first_failure.reason


def test_edit_with_recomputed_hash_still_detected(records):
    target = records[1]
    doc = copy.deepcopy(target.document)
    doc["actor"]["id"] = "someone-else"
    doc["hash"] = record_hash(doc)
    records[1] = _with_doc(target, doc)
    res = verify_chain(records, KEYS)
    assert res.first_failure.record_id == target.record_id


def test_resigned_with_attacker_key_is_unknown_key(records):
    attacker = Signer.generate()
    target = records[2]
    doc = copy.deepcopy(target.document)
    doc["change_class"] = "standard"
    doc["hash"] = record_hash(doc)
    records[2] = StoredRecord(document=doc, envelope=attacker.sign_statement(doc["record_id"], doc["hash"], doc))
    res = verify_chain(records, KEYS)
    assert res.first_failure.record_id == target.record_id and res.first_failure.code == "unknown_key"


def test_replaced_signature_detected(records):
    target = records[4]
    env = copy.deepcopy(target.envelope)
    env["signatures"][0]["sig"] = records[0].envelope["signatures"][0]["sig"]
    records[4] = StoredRecord(document=target.document, envelope=env)
    res = verify_chain(records, KEYS)
    assert res.first_failure.record_id == target.record_id and res.first_failure.code == "signature"


def test_envelope_swapped_from_another_record(records):
    records[4] = StoredRecord(document=records[4].document, envelope=records[5].envelope)
    res = verify_chain(records, KEYS)
    assert res.first_failure.record_id == records[4].record_id and res.first_failure.code == "edited"


def test_deleted_record_is_a_gap(records):
    prod = [r for r in records if r.chain_key.endswith("/prod")]
    victim = prod[1]
    remaining = [r for r in records if r.record_id != victim.record_id]
    res = verify_chain(remaining, KEYS)
    assert res.first_failure.code == "gap" and res.first_failure.record_id == prod[2].record_id
    assert "missing" in res.first_failure.reason


def test_deleted_first_record_is_a_gap(records):
    res = verify_chain(records[1:], KEYS)
    assert res.first_failure.code == "gap" and res.first_failure.sequence == 2


def test_reordered_records(records):
    prod = [r for r in records if r.chain_key.endswith("/prod")]
    res = verify_chain([prod[0], prod[2], prod[1], prod[3]], KEYS)
    assert res.first_failure.code == "reordered" and res.first_failure.record_id == prod[2].record_id


def test_truncated_tail_against_recorded_head(chain_store, records):
    prod_key = next(r.chain_key for r in records if r.chain_key.endswith("/prod"))
    truncated = [r for r in records if not (r.chain_key == prod_key and r.sequence == 4)]
    assert verify_chain(truncated, KEYS).ok  # without a head a clean tail cut is invisible ...
    res = verify_chain(truncated, KEYS, heads=chain_store.heads())  # ... the store's head catches it
    assert res.first_failure.code == "truncated" and res.first_failure.chain_key == prod_key


def test_whole_chain_removed_against_head(chain_store, records):
    res = verify_chain([r for r in records if not r.chain_key.endswith("/dev")], KEYS, heads=chain_store.heads())
    assert res.first_failure.code == "truncated"


def test_unknown_key_set(records):
    res = verify_chain(records, {})
    assert res.first_failure.code == "unknown_key" and res.first_failure.record_id == records[0].record_id


def test_raw_sqlite_edit_after_dropping_triggers(tmp_path):
    store = open_store(f"sqlite://{tmp_path}/e.db")
    stored = [store.append(make_record(), SIGNER) for _ in range(3)]
    con = sqlite3.connect(tmp_path / "e.db")
    con.execute("DROP TRIGGER records_no_update")
    doc = dict(stored[1].document, outcome="failed")
    con.execute("UPDATE records SET document=? WHERE record_id=?", (json.dumps(doc), stored[1].record_id))
    con.commit()
    res = verify_store(open_store(f"sqlite://{tmp_path}/e.db"), KEYS)
    assert res.first_failure.record_id == stored[1].record_id and "outcome" in res.first_failure.reason


def _leaf_paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaf_paths(v, prefix + (k,))
    elif isinstance(node, list) and node:
        for i, v in enumerate(node):
            yield from _leaf_paths(v, prefix + (i,))
    else:
        yield prefix


def _set(doc, path, value):
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_random_edit_is_detected_at_that_record(chain_store, data):
    records = [copy.deepcopy(r) for r in chain_store.iter_all()]
    idx = data.draw(st.integers(0, len(records) - 1), label="record")
    target = records[idx]
    in_envelope = data.draw(st.booleans(), label="edit envelope")
    if in_envelope:
        env = copy.deepcopy(target.envelope)
        field = data.draw(st.sampled_from(["payload", "sig", "keyid", "payloadType"]))
        if field == "payload":
            raw = bytearray(base64.b64decode(env["payload"]))
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] ^= data.draw(st.integers(1, 255))
            env["payload"] = base64.b64encode(bytes(raw)).decode()
        elif field == "sig":
            raw = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
            env["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
        elif field == "keyid":
            env["signatures"][0]["keyid"] = data.draw(st.text(min_size=1, max_size=64))
        else:
            env["payloadType"] = data.draw(st.text(max_size=30).filter(lambda t: t != env["payloadType"]))
        records[idx] = StoredRecord(document=target.document, envelope=env)
    else:
        doc = copy.deepcopy(target.document)
        path = data.draw(st.sampled_from(list(_leaf_paths(doc))), label="field")
        old = doc
        for k in path:
            old = old[k]
        new = data.draw(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
                        .filter(lambda v: v != old or type(v) is not type(old)), label="new value")
        _set(doc, path, new)
        if path != ("hash",) and data.draw(st.booleans(), label="recompute hash"):
            try:
                doc["hash"] = record_hash(doc)
            except ValueError:  # not canonicalisable (e.g. an integer beyond 2**53): the forger cannot hash it
                pass
        records[idx] = _with_doc(target, doc)
    res = verify_chain(records, KEYS)
    assert not res.ok
    assert res.first_failure.record_id in (target.record_id, None) or res.first_failure.sequence == target.sequence
