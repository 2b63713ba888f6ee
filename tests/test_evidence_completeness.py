"""Nothing dropped on the way into the store: values RFC 8785 cannot represent are escaped and marked, and a spooled
record is delivered to the store it was written for -- never to whatever store the flushing shell points at."""

from __future__ import annotations

import json
import math
import socket

import pytest

from ps019.errors import IntegrityError
from ps019.evidence import (CiRun, EvidenceSettings, VerifiedReference, emit, flush_spool, open_store, spooled_files,
                            verify_store)
from ps019.evidence.emit import spool
from tests.plugins.evidence import make_record
from tests.test_audit_cli import run as run_cli


@pytest.fixture(autouse=True)
def _reset_logging():
    import structlog

    yield
    structlog.reset_defaults()


def _unescape(value: str, encoding: str):
    if encoding == "number-text":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    return json.loads(f'"{value}"')


# --- escaped, marked, lossless --------------------------------------------------------------------------------------


def test_every_uncanonicalisable_input_is_kept_losslessly_and_marked(tmp_path, evidence_signer):
    weird_key = "k\ud800/~"
    details = {"nan": float("nan"), "inf": float("inf"), "big": -(2**64), weird_key: ["x\udcfe\"\\y"]}
    record = make_record(ci=CiRun(provider="github-actions", run_id="12\udcff"), links={"a\udc80": "b"},
                         approvals=[VerifiedReference(ref_id="x", kind="approval", details=details)])
    url = f"sqlite://{tmp_path}/e.db"
    assert emit(record, EvidenceSettings(store_url=url), signer=evidence_signer).status == "stored"
    store = open_store(url)
    doc = store.get(record.record_id).document
    assert verify_store(store, {evidence_signer.keyid: evidence_signer.public_key}).ok
    marks = {m["path"]: m for m in doc["escaped"]}
    # Each mark leads back to exactly the original value (or key).
    assert _unescape(doc["ci"]["run_id"], marks["/ci/run_id"]["encoding"]) == "12\udcff"
    assert marks["/ci/run_id"]["reason"] == "invalid UTF-8 byte(s) 0xff"
    got = doc["approvals"][0]["details"]
    assert math.isnan(_unescape(got["nan"], "number-text")) and _unescape(got["inf"], "number-text") == math.inf
    assert _unescape(got["big"], "number-text") == -(2**64)
    [escaped_key] = [k for k in got if k.startswith("k")]
    assert _unescape(escaped_key, "json-string") == weird_key
    key_path = "/approvals/0/details/" + escaped_key.replace("~", "~0").replace("/", "~1")
    assert marks[key_path]["encoding"] == "json-string-key"
    assert _unescape(got[escaped_key][0], marks[key_path + "/0"]["encoding"]) == "x\udcfe\"\\y"
    assert _unescape(next(iter(doc["links"])), marks["/links/a\\udc80"]["encoding"]) == "a\udc80"
    assert set(marks) == {"/ci/run_id", "/approvals/0/details/nan", "/approvals/0/details/inf",
                          "/approvals/0/details/big", key_path, key_path + "/0", "/links/a\\udc80"}


def test_records_without_odd_values_keep_their_exact_form(tmp_path, evidence_signer):
    stored = open_store(f"sqlite://{tmp_path}/e.db").append(make_record(), evidence_signer)
    assert "escaped" not in stored.document and "recording" not in stored.document


def test_an_escaped_record_survives_the_spool(tmp_path, evidence_signer):
    url = f"sqlite://{tmp_path}/store/e.db"
    settings = EvidenceSettings(store_url=url, spool_dir=str(tmp_path / "spool"))
    (tmp_path / "store").write_text("blocks the store directory")
    record = make_record(ci=CiRun(provider="github-actions", run_id="\udcff"))
    assert emit(record, settings, signer=evidence_signer).status == "spooled"
    (tmp_path / "store").unlink()
    (tmp_path / "store").mkdir()
    assert flush_spool(settings, signer=evidence_signer).delivered == [record.record_id]
    doc = open_store(url).get(record.record_id).document
    assert doc["ci"]["run_id"] == "\\udcff" and [m["path"] for m in doc["escaped"]] == ["/ci/run_id"]


# --- the spool remembers its store ------------------------------------------------------------------------------------


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flush_delivers_to_the_store_the_record_was_spooled_for_never_to_the_shells_default(
        tmp_path, evidence_home, monkeypatch, capsys, evidence_signer):
    """Before: `ps019 evidence flush` delivered records spooled for the pack's (unreachable) store into whatever
    $PS019_EVIDENCE_STORE or the per-user default named."""
    pack_store = f"sqlite://{tmp_path}/pack-store/e.db"
    shell_store = f"sqlite://{tmp_path}/shell.db"
    spool_dir = tmp_path / "spool"
    (tmp_path / "pack-store").write_text("the pack's store is unreachable")
    record = make_record()
    monkeypatch.setenv("PS019_EVIDENCE_SPOOL_DIR", str(spool_dir))
    assert emit(record, EvidenceSettings(store_url=pack_store), signer=evidence_signer).status == "spooled"
    monkeypatch.setenv("PS019_EVIDENCE_STORE", shell_store)
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY", evidence_signer.private_key_pem().decode())

    code, out, err = run_cli(capsys, "evidence", "flush")  # the pack's store is still down
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pack-store" in err, err
    code, out, err = run_cli(capsys, "evidence", "flush", "--store", shell_store)  # asked for the wrong store
    assert code == 1 and "not delivered" in err and "pack-store/e.db" in err, err
    assert open_store(shell_store).count() == 0 and len(spooled_files(EvidenceSettings())) == 1

    (tmp_path / "pack-store").unlink()
    (tmp_path / "pack-store").mkdir()
    code, out, err = run_cli(capsys, "evidence", "flush")
    assert code == 0 and out.startswith("1 delivered"), err
    assert open_store(pack_store).contains(record.record_id) and open_store(shell_store).count() == 0
    assert spooled_files(EvidenceSettings()) == []


@pytest.mark.moto
def test_records_spooled_for_an_unreachable_s3_store_are_delivered_to_that_s3_store(
        s3_evidence_url, tmp_path, evidence_home, monkeypatch, capsys, evidence_signer):
    import os

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("PS019_EVIDENCE_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_dead_port()}")
    record = make_record()
    settings = EvidenceSettings(store_url=s3_evidence_url, connect_timeout_s=1)
    assert emit(record, settings, signer=evidence_signer).status == "spooled"
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY", evidence_signer.private_key_pem().decode())
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # S3 is back; the shell has no store configured at all
    code, out, err = run_cli(capsys, "evidence", "flush")
    assert code == 0, err
    assert open_store(s3_evidence_url).get(record.record_id) is not None
    local_default = evidence_home / "evidence.db"
    assert not local_default.exists() or open_store(f"sqlite://{local_default}").count() == 0


def test_a_spool_file_redirected_to_another_store_fails_its_signature(tmp_path, evidence_signer):
    settings = EvidenceSettings(store_url=f"sqlite://{tmp_path}/a.db", spool_dir=str(tmp_path / "spool"))
    path = spool(make_record(), settings, evidence_signer)
    obj = json.loads(path.read_text())
    obj["destination"] = f"sqlite://{tmp_path}/attacker.db"
    path.write_text(json.dumps(obj))
    with pytest.raises(IntegrityError, match="signature"):
        flush_spool(settings.model_copy(update={"store_url": obj["destination"]}), signer=evidence_signer)
    assert path.exists()


def test_a_spool_file_from_before_destinations_needs_an_explicit_store(tmp_path, evidence_signer):
    import hashlib

    from ps019.evidence.record import canonical_bytes
    from ps019.evidence.signing import SPOOL_PREDICATE_TYPE

    settings = EvidenceSettings(spool_dir=str(tmp_path / "spool"))
    (tmp_path / "spool").mkdir()
    record = make_record()
    doc = record.document()
    envelope = evidence_signer.sign_statement(doc["record_id"], hashlib.sha256(canonical_bytes(doc)).hexdigest(),
                                              doc, predicate_type=SPOOL_PREDICATE_TYPE)
    (tmp_path / "spool" / "00000000000000000001-old.json").write_text(json.dumps({"record": doc, "envelope": envelope}))
    result = flush_spool(settings, signer=evidence_signer)
    assert result.delivered == [] and result.remaining == 1 and "--store" in result.refused[0]
    explicit = settings.model_copy(update={"store_url": f"sqlite://{tmp_path}/e.db"})
    assert flush_spool(explicit, signer=evidence_signer).delivered == [record.record_id]
