"""The auditor's first steps: get the verifying key (`ps019 evidence public-key`), verify with it, and run
`ps019 report` without having to know a period first."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ps019.evidence import EvidenceSettings, Signer, emit, open_store
from tests.plugins.evidence import make_record
from tests.test_audit_cli import run


@pytest.fixture(autouse=True)
def _reset_logging():
    import structlog

    yield
    structlog.reset_defaults()


@pytest.fixture
def org(tmp_path, evidence_home, monkeypatch):
    """An organisation's store with two records signed by its managed key (PS019_EVIDENCE_SIGNING_KEY_FILE); the
    auditor's shell has its own, different, per-user key."""
    key_file = tmp_path / "org-evidence.pem"
    signer = Signer.generate()
    key_file.write_bytes(signer.private_key_pem())
    key_file.chmod(0o600)
    url = f"sqlite://{tmp_path / 'org.db'}"
    settings = EvidenceSettings(store_url=url, signing_key_file=str(key_file))
    for _ in range(2):
        assert emit(make_record(started_at=datetime.now(timezone.utc) - timedelta(days=3)), settings).ok
    return {"url": url, "key_file": key_file, "public_key": signer.public_key_b64()}


def test_public_key_prints_the_configured_signers_key_in_the_form_verify_takes(capsys, org, tmp_path, monkeypatch):
    code, out, err = run(capsys, "evidence", "verify", "--store", org["url"])  # the auditor's own key: not the org's
    assert code == 1 and "unknown key" in out
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY_FILE", str(org["key_file"]))  # as the platform team runs it
    code, pem, err = run(capsys, "evidence", "public-key")
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in pem + err
    code, raw, _ = run(capsys, "evidence", "public-key", "--format", "base64")
    code, keyid, _ = run(capsys, "evidence", "public-key", "--format", "keyid")
    monkeypatch.delenv("PS019_EVIDENCE_SIGNING_KEY_FILE")

    pub = tmp_path / "org-evidence.pub"
    pub.write_text(pem)
    for given in (str(pub), raw.strip()):  # a file, or the key itself on the command line
        code, out, err = run(capsys, "evidence", "verify", "--store", org["url"], "--public-key", given)
        assert code == 0 and out.startswith("OK: 2 records"), out + err
    with open_store(org["url"]) as store:
        signed_by = {s.envelope["signatures"][0]["keyid"] for s in store.iter_all()}
    assert signed_by == {keyid.strip()}


def test_public_key_reads_a_key_file_and_refuses_a_bad_one_in_one_line(capsys, org, tmp_path):
    code, out, err = run(capsys, "evidence", "public-key", "--signing-key-file", str(org["key_file"]), "--format",
                         "keyid")
    assert code == 0 and len(out.strip()) == 64
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    code, out, err = run(capsys, "evidence", "public-key", "--signing-key-file", str(bad))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "not a key" not in err
    code, out, err = run(capsys, "evidence", "public-key", "--signing-key-file", str(tmp_path / "missing.pem"))
    assert code == 2 and "missing.pem" in err and len(err.strip().splitlines()) == 1


def test_report_has_a_documented_default_period(capsys, org):
    """Before: `ps019 report` refused to run without --since."""
    code, out, err = run(capsys, "report", "--store", org["url"], "--public-key", org["public_key"], "--format", "json")
    assert code == 0, err
    metrics = json.loads(out)
    since = datetime.fromisoformat(metrics["since"].replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - since) - timedelta(days=90)) < timedelta(minutes=5)
    code, out, err = run(capsys, "report", "--store", org["url"], "--public-key", org["public_key"], "--until",
                         "2026-12-01", "--format", "json")
    assert json.loads(out)["since"].startswith("2026-09-02")
