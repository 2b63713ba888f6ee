"""The record, its integrity (hash chain + DSSE) and the sqlite store."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ps019.errors import InputError, StoreError
from ps019.evidence import (PREDICATE_TYPE, resource_change, EvidenceRecord, EvidenceSettings, RecordKind, Signer, StoredRecord,
                            inputs_digest, load_signer, open_store, record_hash, verify_chain, verify_store)
from ps019.evidence.schema import DEFAULT_PATH, render
from tests.plugins.evidence import make_record


def test_committed_json_schema_is_current():
    assert DEFAULT_PATH.read_text() == render(), "run: python -m ps019.evidence.schema"


def test_record_validates_against_published_schema(evidence_signer, sqlite_evidence_url):
    import jsonschema

    stored = open_store(sqlite_evidence_url).append(make_record(), evidence_signer)
    jsonschema.validate(stored.document, json.loads(DEFAULT_PATH.read_text()))


def test_timestamps_must_be_aware_and_are_utc():
    from datetime import datetime, timedelta, timezone

    with pytest.raises(ValueError):
        make_record(started_at=datetime(2026, 1, 1))
    rec = make_record(started_at=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    assert rec.document()["started_at"] == "2026-01-01T10:00:00.000000Z"


def test_append_assigns_per_stack_chain(evidence_signer, sqlite_evidence_url):
    store = open_store(sqlite_evidence_url)
    a1 = store.append(make_record(stack="prod"), evidence_signer)
    b1 = store.append(make_record(stack="dev", environment="development"), evidence_signer)
    a2 = store.append(make_record(stack="prod"), evidence_signer)
    assert (a1.sequence, b1.sequence, a2.sequence) == (1, 1, 2)
    assert a1.prev_hash == "0" * 64 and a2.prev_hash == a1.hash
    assert a1.chain_key == "acme/payments/prod"
    assert record_hash(a2.document) == a2.hash
    assert verify_store(store, {evidence_signer.keyid: evidence_signer.public_key}).ok


def test_append_is_idempotent_by_record_id(evidence_signer, sqlite_evidence_url):
    store = open_store(sqlite_evidence_url)
    rec = make_record()
    first = store.append(rec, evidence_signer)
    again = store.append(rec, evidence_signer)
    assert again.hash == first.hash and store.count() == 1


def test_envelope_is_in_toto_statement_over_the_record(evidence_signer, sqlite_evidence_url):
    stored = open_store(sqlite_evidence_url).append(make_record(), evidence_signer)
    env = stored.envelope
    assert env["payloadType"] == "application/vnd.in-toto+json"
    stmt = json.loads(base64.b64decode(env["payload"]))
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == PREDICATE_TYPE
    assert stmt["subject"] == [{"name": stored.record_id, "digest": {"sha256": stored.hash}}]
    assert stmt["predicate"] == stored.document
    assert env["signatures"][0]["keyid"] == evidence_signer.keyid


def test_securesystemslib_verifies_the_envelope_independently(evidence_signer, sqlite_evidence_url):
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    stored = open_store(sqlite_evidence_url).append(make_record(), evidence_signer)
    # our keyid is sha256(raw public key); the key object is built from the raw bytes alone
    key = SSlibKey(evidence_signer.keyid, "ed25519", "ed25519",
                   {"public": base64.b64decode(evidence_signer.public_key_b64()).hex()})
    env = Envelope.from_dict(json.loads(json.dumps(stored.envelope)))
    env.verify([key], 1)
    assert json.loads(env.payload)["predicate"]["hash"] == stored.hash
    tampered = dict(stored.envelope)
    stmt = json.loads(base64.b64decode(tampered["payload"]))
    stmt["predicate"]["environment"] = "development"
    tampered["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(tampered).verify([key], 1)


def test_sqlite_refuses_update_and_delete(evidence_signer, sqlite_evidence_url, tmp_path):
    store = open_store(sqlite_evidence_url)
    store.append(make_record(), evidence_signer)
    con = sqlite3.connect(tmp_path / "evidence.db")
    for sql in ("UPDATE records SET environment='x'", "DELETE FROM records", "DELETE FROM heads",
                "UPDATE heads SET seq = 0"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only|heads"):
            con.execute(sql)
    # a forged row that does not extend the head is refused by the database itself
    with pytest.raises(sqlite3.DatabaseError, match="fork"):
        con.execute("INSERT INTO records (record_id, chain_key, seq, prev_hash, hash, kind, stack, environment, "
                    "started_at, break_glass, has_violations, document, envelope) VALUES "
                    "('x','acme/payments/prod',5,'00','ff','update','s','e','t',0,0,'{}','{}')")


def test_sqlite_file_is_private(evidence_signer, sqlite_evidence_url, tmp_path):
    open_store(sqlite_evidence_url).append(make_record(), evidence_signer)
    assert stat.S_IMODE((tmp_path / "evidence.db").stat().st_mode) == 0o600


def test_query_filters(evidence_signer, sqlite_evidence_url):
    from datetime import datetime, timezone

    store = open_store(sqlite_evidence_url)
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    store.append(make_record(stack="prod", started_at=t0), evidence_signer)
    store.append(make_record(stack="dev", environment="development", policy_results=[],
                             started_at=datetime(2026, 4, 1, tzinfo=timezone.utc)), evidence_signer)
    store.append(make_record(kind="blocked", stack="prod", change_class="emergency", outcome="blocked",
                             started_at=datetime(2026, 5, 1, tzinfo=timezone.utc)), evidence_signer)
    assert len(store.query(stack="acme/payments/prod")) == 2
    assert len(store.query(stack="prod")) == 2
    assert len(store.query(environment="development")) == 1
    assert len(store.query(kind="blocked")) == 1 and len(store.query(kind=RecordKind.BLOCKED)) == 1
    assert len(store.query(change_class="emergency")) == 1
    assert len(store.query(break_glass=True)) == 1
    assert len(store.query(with_violations=True)) == 2
    assert len(store.query(actor="arn:aws:sts::123456789012:assumed-role/deployer/ci-1")) == 3
    got = store.query(since=datetime(2026, 3, 15, tzinfo=timezone.utc), until=datetime(2026, 5, 1, tzinfo=timezone.utc))
    assert [r.document["stack"] for r in got] == ["dev"]
    newest_first = store.query(limit=2)
    assert [r.document["started_at"][:7] for r in newest_first] == ["2026-05", "2026-04"]
    with pytest.raises(InputError):
        store.query(bogus=1)


def test_inputs_digest_hashes_the_redacted_bag():
    props = {"password": "pw1", "name": "db"}
    assert inputs_digest(props, frozenset({("password",)})) == inputs_digest(
        {"password": "[secret]", "name": "db"})
    assert inputs_digest(props, frozenset({("password",)})) != inputs_digest(props)


def test_forbidden_values_are_redacted_before_storage(evidence_signer, sqlite_evidence_url, tmp_path):
    from ps019.evidence import PolicyResult

    secret = "Sup3r-s3cret-pw"
    rec = make_record(policy_results=[PolicyResult(control_id="X", level="mandatory", message=f"pw={secret}")],
                      links={"note": secret}, forbidden_values={secret, "ab"})
    stored = open_store(sqlite_evidence_url).append(rec, evidence_signer)
    assert stored.document["links"]["note"] == "[secret]"
    assert "forbidden_values" not in stored.document
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("evidence.db*"))
    assert secret.encode() not in raw
    assert base64.b64encode(secret.encode())[:12] not in raw


def test_unknown_scheme_and_unreachable(tmp_path):
    with pytest.raises(InputError):
        open_store("ftp://x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{blocker}/sub/evidence.db")


def test_default_store_and_key_are_per_user(evidence_home):
    store = open_store(None)
    assert store.url == f"sqlite://{evidence_home / 'evidence.db'}"
    signer = load_signer(EvidenceSettings())
    key_path = evidence_home / "evidence-signing-key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert load_signer().keyid == signer.keyid  # kept, not regenerated


def test_signing_key_from_env(monkeypatch, evidence_home, tmp_path):
    signer = Signer.generate()
    raw = signer._key.private_bytes_raw()
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY", base64.b64encode(raw).decode())
    assert load_signer().keyid == signer.keyid
    pem = tmp_path / "k.pem"
    pem.write_bytes(signer.private_key_pem())
    monkeypatch.delenv("PS019_EVIDENCE_SIGNING_KEY")
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY_FILE", str(pem))
    assert load_signer().keyid == signer.keyid
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(InputError):
        load_signer()
    monkeypatch.delenv("PS019_EVIDENCE_SIGNING_KEY_FILE")
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY", "not a key")
    with pytest.raises(InputError) as err:
        load_signer()
    assert "not a key" not in str(err.value)


def test_verify_keys_from_settings(evidence_signer):
    settings = EvidenceSettings(verify_keys={evidence_signer.keyid: evidence_signer.public_key_pem()})
    assert list(settings.public_keys()) == [evidence_signer.keyid]
    with pytest.raises(InputError):
        EvidenceSettings(verify_keys={"0" * 64: evidence_signer.public_key_b64()}).public_keys()


def test_governance_record_round_trip(evidence_signer, sqlite_evidence_url):
    from datetime import datetime, timedelta, timezone

    from ps019.evidence import BreakGlassOpenPayload, Identity

    now = datetime.now(timezone.utc)
    rec = EvidenceRecord(kind=RecordKind.BREAK_GLASS_OPEN, organization="acme", project="payments", stack="prod",
                         environment="production", payload=BreakGlassOpenPayload(
                             grant_id="bg-1", operator=Identity(id="arn:aws:sts::1:assumed-role/oncall/bob"),
                             reason="outage", incident="INC-9", opened_at=now, expires_at=now + timedelta(hours=2),
                             waived_controls=["PS019-GATE-001"]))
    store = open_store(sqlite_evidence_url)
    stored = store.append(rec, evidence_signer)
    back = store.get(stored.record_id).record
    assert back.payload.grant_id == "bg-1" and back.is_break_glass
    assert store.query(actor="arn:aws:sts::1:assumed-role/oncall/bob")[0].record_id == stored.record_id


_json_leaf = (st.none() | st.booleans() | st.integers(-(2**54), 2**54) | st.text()
              | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([80.0, -0.0, 1e-5, 1e16, 0.1]))
_json_doc = st.recursive(_json_leaf, lambda kids: st.lists(kids, max_size=4)
                         | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(_json_doc)
def test_canonical_fast_path_equals_rfc8785(doc):
    import rfc8785

    from ps019.evidence.record import canonical_bytes

    try:
        expected = rfc8785.dumps(doc)
    except Exception:  # noqa: BLE001 -- the reference refuses it (e.g. lone surrogates): so must we
        with pytest.raises(Exception):
            canonical_bytes(doc)
        return
    assert canonical_bytes(doc) == expected


def test_canonical_floats_use_the_reference():
    from ps019.evidence.record import canonical_bytes

    assert canonical_bytes({"a": 1.0, "b": 1e21, "c": [0.1]}) == b'{"a":1,"b":1e+21,"c":[0.1]}'


def test_indexed_columns_come_from_the_redacted_document(evidence_signer, sqlite_evidence_url, tmp_path):
    from ps019.evidence import Identity
    from ps019.evidence.store import document_facts, index_facts

    secret = "actor-is-a-secret-123"
    rec = make_record(actor=Identity(id=secret), change_class="emergency", forbidden_values={secret})
    stored = open_store(sqlite_evidence_url).append(rec, evidence_signer)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("evidence.db*"))
    assert secret.encode() not in raw
    assert document_facts(stored.document) == index_facts(stored.record)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _json_doc, max_size=5), st.data())
def test_inputs_digest_equals_reference_definition(props, data):
    """inputs_digest == sha256(deterministic protobuf Struct of ps019.model.redact(props, secret_paths)), and equals
    the digest the pack takes from the engine's wire Struct when nothing needs redacting."""
    import hashlib

    from google.protobuf import struct_pb2

    from ps019.engine.values import Secret, marshal_properties
    from ps019.model import redact
    from ps019.pack.convert import request_view
    from pulumi.runtime.proto import analyzer_pb2

    keys = list(props)
    paths = frozenset(data.draw(st.lists(st.sampled_from(keys), max_size=2)) if keys else [])
    secret_paths = frozenset((k,) for k in paths) | frozenset({("absent", "x")})
    reference = struct_pb2.Struct()
    try:
        reference.update(redact(props, secret_paths))
    except (ValueError, TypeError):
        return
    assert inputs_digest(props, secret_paths) == hashlib.sha256(reference.SerializeToString(deterministic=True)).hexdigest()
    assert inputs_digest({"port": 80.0}) == inputs_digest({"port": 80})
    # The pack's fast path (digest of the wire bytes) and the slow path (plain values) agree, secrets or not.
    wire = {k: Secret(v) if (k,) in secret_paths else v for k, v in props.items() if not k.startswith("__")}
    try:
        struct = marshal_properties(wire, dry_run=False)
    except Exception:
        return
    view = request_view(analyzer_pb2.AnalyzeRequest(type="t:i:T", urn="urn:pulumi:s::p::t:i:T::n", properties=struct))
    assert resource_change(view).inputs_digest == inputs_digest(view.props, view.secret_paths)


def test_hash_and_statement_match_their_definitions(evidence_signer):
    import rfc8785

    from ps019.evidence.record import hash_and_statement
    from ps019.evidence.signing import statement

    for doc in (make_record().document(), make_record(links={"x": "y"}).document()):
        doc["hash"] = None
        digest, payload = hash_and_statement(doc)
        assert digest == record_hash(doc)
        assert payload == rfc8785.dumps(statement(doc["record_id"], digest, {**doc, "hash": digest}))


def test_append_many_writes_the_same_chain_as_single_appends(evidence_signer, tmp_path):
    """The batch path (spool flush, migrations, benchmarks) is the single-append path in one transaction."""
    one, many = open_store(f"sqlite:///{tmp_path}/one.db"), open_store(f"sqlite:///{tmp_path}/many.db")
    records = [make_record() for _ in range(5)]
    singles = [one.append(r, evidence_signer) for r in records]
    batch = many.append_many(records, evidence_signer)
    assert [s.document for s in singles] == [b.document for b in batch]
    assert many.append_many(records[:2], evidence_signer)[0].document == singles[0].document  # idempotent
    assert many.count() == 5 and verify_store(many, {evidence_signer.keyid: evidence_signer.public_key}).ok
