"""Outage -> spool -> flush exactly once, and no secret plaintext anywhere in a store or the spool."""

from __future__ import annotations

import base64
import json
import socket
import stat

import pytest

from ps019.errors import IntegrityError, StoreError
from ps019.evidence import (EvidenceSettings, PolicyResult, emit, flush_spool, open_store, spooled_files,
                            verify_store)
from tests.plugins.evidence import make_record

SECRET = "correct-horse-battery-staple-42"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _secret_record(**over):
    return make_record(
        policy_results=[PolicyResult(control_id="PS019-X-001", level="mandatory",
                                     message=f"db password {SECRET} is in plain config")],
        links={"leak": SECRET}, forbidden_values={SECRET}, **over)


def test_store_down_spools_then_flush_delivers_exactly_once(tmp_path, evidence_signer):
    down = EvidenceSettings(store_url=f"sqlite://{tmp_path}/blocker/e.db", spool_dir=str(tmp_path / "spool"))
    (tmp_path / "blocker").write_text("not a directory")  # the store cannot be opened
    recs = [make_record(), make_record(stack="dev", environment="development"), make_record()]
    results = [emit(r, down, signer=evidence_signer) for r in recs]
    assert [r.status for r in results] == ["spooled"] * 3
    assert "ps019 evidence flush" in results[0].message
    # A production record spooled is blocking by default; other tiers are told only.
    assert [r.level for r in results] == ["mandatory", "advisory", "mandatory"]
    files = spooled_files(down)
    assert len(files) == 3 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

    (tmp_path / "blocker").unlink()  # the store comes back, at the same URL
    (tmp_path / "blocker").mkdir()
    up = down
    flushed = flush_spool(up, signer=evidence_signer)
    assert flushed.delivered == [r.record_id for r in recs] and flushed.remaining == 0
    again = flush_spool(up, signer=evidence_signer)
    assert again.delivered == [] and again.remaining == 0
    store = open_store(up.store_url)
    assert store.count() == 3
    assert [r.record_id for r in store.iter_all("acme/payments/prod")] == [recs[0].record_id, recs[2].record_id]
    assert verify_store(store, {evidence_signer.keyid: evidence_signer.public_key}).ok


def test_flush_after_crash_between_append_and_unlink_is_not_a_duplicate(tmp_path, evidence_signer):
    settings = EvidenceSettings(store_url=f"sqlite://{tmp_path}/e.db", spool_dir=str(tmp_path / "spool"))
    rec = make_record()
    from ps019.evidence.emit import spool

    path = spool(rec, settings, evidence_signer)
    open_store(settings.store_url).append(rec, evidence_signer)  # delivered, but the file was not removed
    res = flush_spool(settings, signer=evidence_signer)
    assert res.already_present == [rec.record_id] and not path.exists()
    assert open_store(settings.store_url).count() == 1


def test_flush_while_store_still_down_keeps_the_spool(tmp_path, evidence_signer):
    (tmp_path / "blocker").write_text("")
    settings = EvidenceSettings(store_url=f"sqlite://{tmp_path}/blocker/e.db", spool_dir=str(tmp_path / "spool"))
    emit(make_record(), settings, signer=evidence_signer)
    with pytest.raises(StoreError):
        flush_spool(settings, signer=evidence_signer)
    assert len(spooled_files(settings)) == 1


def test_tampered_spool_file_is_refused(tmp_path, evidence_signer):
    (tmp_path / "blocker").write_text("")
    down = EvidenceSettings(store_url=f"sqlite://{tmp_path}/blocker/e.db", spool_dir=str(tmp_path / "spool"))
    res = emit(make_record(), down, signer=evidence_signer)
    path = spooled_files(down)[0]
    obj = json.loads(path.read_text())
    obj["record"]["environment"] = "development"
    path.write_text(json.dumps(obj))
    up = down.model_copy(update={"store_url": f"sqlite://{tmp_path}/e.db"})
    with pytest.raises(IntegrityError, match="signature"):
        flush_spool(up, signer=evidence_signer)
    assert path.exists() and not open_store(up.store_url).contains(res.record_id)


def test_mandatory_outage_level_applies_to_production_only(tmp_path, evidence_signer):
    (tmp_path / "blocker").write_text("")
    settings = EvidenceSettings(store_url=f"sqlite://{tmp_path}/blocker/e.db", spool_dir=str(tmp_path / "spool"),
                                outage_level="mandatory")
    assert emit(make_record(), settings, signer=evidence_signer).level == "mandatory"
    dev = make_record(stack="dev", environment="development")
    assert emit(dev, settings, signer=evidence_signer).level == "advisory"
    relaxed = settings.model_copy(update={"outage_level": "advisory"})  # the explicit relaxation
    assert emit(make_record(), relaxed, signer=evidence_signer).level == "advisory"


@pytest.mark.postgres
def test_postgres_outage_then_recovery(pg_evidence, tmp_path, evidence_signer):
    # The same server and database, reached as a role that cannot log in: down until the right credentials return.
    down_url = pg_evidence.writer_dsn.replace("evidence_writer@", "no_such_role:pw-not-shown@")
    down = EvidenceSettings(store_url=down_url, spool_dir=str(tmp_path / "spool"), connect_timeout_s=1)
    res = emit(make_record(), down, signer=evidence_signer)
    assert res.status == "spooled" and "pw-not-shown" not in res.message and "pw-not-shown" not in res.store_url
    assert not any(b"pw-not-shown" in f.read_bytes() for f in spooled_files(down))
    up = down.model_copy(update={"store_url": pg_evidence.writer_dsn})
    assert flush_spool(up, signer=evidence_signer).delivered == [res.record_id]
    assert flush_spool(up, signer=evidence_signer).delivered == []
    with open_store(up.store_url) as store:
        assert store.count() == 1


@pytest.mark.moto
def test_s3_outage_then_recovery(s3_evidence_url, tmp_path, evidence_signer, monkeypatch):
    settings = EvidenceSettings(store_url=s3_evidence_url, spool_dir=str(tmp_path / "spool"), connect_timeout_s=1)
    import os

    good = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_dead_port()}")
    res = emit(make_record(), settings, signer=evidence_signer)
    assert res.status == "spooled"
    monkeypatch.setenv("AWS_ENDPOINT_URL", good)
    assert flush_spool(settings, signer=evidence_signer).delivered == [res.record_id]
    assert flush_spool(settings, signer=evidence_signer).delivered == []
    assert open_store(s3_evidence_url).get(res.record_id) is not None


def _assert_no_secret(raw: bytes, where: str):
    assert SECRET.encode() not in raw, f"secret plaintext found in {where}"
    # also inside base64 DSSE payloads
    for chunk in raw.split(b'"payload":'):
        token = chunk.lstrip(b' "').split(b'"', 1)[0]
        try:
            decoded = base64.b64decode(token, validate=True)
        except ValueError:
            continue
        assert SECRET.encode() not in decoded, f"secret inside an envelope payload in {where}"


def test_no_secret_in_sqlite_or_spool(tmp_path, evidence_signer):
    settings = EvidenceSettings(store_url=f"sqlite://{tmp_path}/e.db", spool_dir=str(tmp_path / "spool"))
    assert emit(_secret_record(), settings, signer=evidence_signer).status == "stored"
    (tmp_path / "blocker").write_text("")
    down = settings.model_copy(update={"store_url": f"sqlite://{tmp_path}/blocker/e.db"})
    assert emit(_secret_record(), down, signer=evidence_signer).status == "spooled"
    _assert_no_secret(b"".join(p.read_bytes() for p in tmp_path.glob("spool/*")), "spool")
    flush_spool(settings, signer=evidence_signer)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("e.db*"))
    _assert_no_secret(raw, "sqlite")
    assert b"[secret]" in raw


@pytest.mark.postgres
def test_no_secret_in_postgres(pg_evidence, evidence_signer):
    import pathlib

    import psycopg

    with open_store(pg_evidence.writer_dsn) as store:
        store.append(_secret_record(), evidence_signer)
    # every row of every table in the evidence database, as the superuser sees it (large documents are
    # compressed on disk, so the decoded rows are the meaningful bytes) ...
    with psycopg.connect(pg_evidence.dsn("postgres"), autocommit=True) as con:
        tables = con.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                             "('pg_catalog', 'information_schema')").fetchall()
        dump = "".join(str(con.execute(f'SELECT row_to_json(t)::text FROM "{s}"."{t}" t').fetchall())
                       for s, t in tables).encode()
        con.execute("CHECKPOINT")
    assert b"[secret]" in dump  # the record really is in these bytes
    _assert_no_secret(dump, "postgres rows")
    # ... and the raw data directory (WAL, heap files) for good measure
    raw = b"".join(p.read_bytes() for p in pathlib.Path(pg_evidence.datadir).rglob("*") if p.is_file())
    _assert_no_secret(raw, "postgres data directory")


@pytest.mark.moto
def test_no_secret_in_s3(s3_evidence_url, evidence_signer):
    import boto3

    store = open_store(s3_evidence_url)
    store.append(_secret_record(), evidence_signer)
    s3 = boto3.client("s3")
    raw = b""
    for v in s3.list_object_versions(Bucket=store.bucket).get("Versions", []):
        raw += s3.get_object(Bucket=store.bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
    assert b"[secret]" in raw
    _assert_no_secret(raw, "s3 objects")


def test_a_value_rfc8785_cannot_represent_is_stored_escaped_and_marked_not_dropped(tmp_path, evidence_signer):
    """Before: an integer beyond 2**53 in a details field made the record an InputError -- neither stored nor
    spooled. Now it is stored in a lossless escaped form, listed under ``escaped``, and the record verifies."""
    from ps019.evidence import VerifiedReference

    settings = EvidenceSettings(store_url=f"sqlite://{tmp_path}/e.db", spool_dir=str(tmp_path / "spool"))
    odd = make_record(approvals=[VerifiedReference(ref_id="x", kind="approval", details={"n": 2**60})])
    result = emit(odd, settings, signer=evidence_signer)
    assert result.status == "stored" and spooled_files(settings) == []
    doc = open_store(settings.store_url).get(odd.record_id).document
    assert doc["approvals"][0]["details"]["n"] == str(2**60)
    assert doc["escaped"] == [{"path": "/approvals/0/details/n", "encoding": "number-text",
                               "reason": "integer beyond 2**53 (RFC 8785 has no exact form for it)"}]
    assert verify_store(open_store(settings.store_url), {evidence_signer.keyid: evidence_signer.public_key}).ok
