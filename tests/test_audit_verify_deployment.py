"""`ps019 verify --state EXPORT --stack ...`: post-release verification against the update record the real pack
wrote (through the engine stand-in), match and drift, and the verification record it appends."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.test_audit_cli import run

EXPORT = Path(__file__).resolve().parent.parent / "examples" / "web-service" / "stack-export.prod.json"
STACK = "acme/web-service/prod"
DB_PASSWORD = "demo-only-Pg-7f3a9c2e51"  # plaintext secret in the example export


@pytest.fixture(autouse=True)
def _reset_logging():
    import structlog

    yield
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A store holding the update record the bundled pack wrote for the example production stack."""
    import os

    from ps019.cli.analyze import bundled_pack_dir
    from ps019.engine import load_stack_export, run_pass

    root = tmp_path_factory.mktemp("verify")
    url = f"sqlite:///{root / 'ev.db'}"
    env = {"PS019_EVIDENCE_STORE": url, "XDG_DATA_HOME": str(root / "xdg")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        export = load_stack_export(EXPORT, STACK)
        result = run_pass(bundled_pack_dir(), export.resources, stack=STACK, dry_run=False,
                          policy_pack_config={"all": "advisory", "ps019-settings": {"evidence": {"store_url": url}}})
        assert result.blocked_at is None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return url, root


@pytest.fixture
def env(deployed, monkeypatch):
    url, root = deployed
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "xdg"))
    monkeypatch.delenv("PS019_EVIDENCE_STORE", raising=False)
    return url


def _verification_records(url):
    from ps019.evidence import open_store

    with open_store(url) as s:
        return [r.document for r in s.query(kind="verification")]


def test_unchanged_state_matches_and_is_recorded(capsys, env):
    before = len(_verification_records(env))
    code, out, err = run(capsys, "verify", "--state", str(EXPORT), "--stack", STACK, "--store", env)
    assert code == 0, out + err
    assert out.startswith(f"{STACK}: MATCH against update record") and "verification record" in out
    assert DB_PASSWORD not in out + err
    recs = _verification_records(env)
    assert len(recs) == before + 1
    newest = max(recs, key=lambda d: d["started_at"])
    assert newest["payload"]["matched"] is True and newest["outcome"] == "matched"
    assert newest["links"]["update_record_id"] == newest["payload"]["against_record_id"]
    code, out, _ = run(capsys, "evidence", "verify", "--store", env)
    assert code == 0 and out.startswith("OK")


def test_drift_lists_differences_and_exits_1(capsys, env, tmp_path):
    doc = json.loads(EXPORT.read_text())
    drifted = copy.deepcopy(doc)
    resources = drifted["deployment"]["resources"]
    bucket = next(r for r in resources if r["type"] == "aws:s3/bucket:Bucket")
    bucket["inputs"]["tags"] = {**(bucket["inputs"].get("tags") or {}), "changed-by": "console"}
    db = next(r for r in resources if r["type"] == "aws:rds/instance:Instance")
    db["inputs"]["password"]["plaintext"] = json.dumps("rotated-by-hand-Secret-42")
    removed = next(r for r in resources if r["type"] == "aws:s3/bucketVersioning:BucketVersioning")
    resources.remove(removed)
    state = tmp_path / "drifted.json"
    state.write_text(json.dumps(drifted))
    code, out, err = run(capsys, "verify", "--state", str(state), "--stack", STACK, "--store", env,
                         "--format", "json")
    assert code == 1, err
    result = json.loads(out)
    assert result["result"] == "drift"
    assert result["changed"] == [bucket["urn"]]  # a secret's value never changes the digest
    assert result["missing"] == [removed["urn"]] and result["unexpected"] == []
    assert "rotated-by-hand-Secret-42" not in out + err and DB_PASSWORD not in out + err
    newest = max(_verification_records(env), key=lambda d: d["started_at"])
    assert newest["payload"]["matched"] is False and newest["payload"]["changed"] == [bucket["urn"]]
    raw = Path(env.removeprefix("sqlite://")).read_bytes()
    assert b"rotated-by-hand" not in raw and DB_PASSWORD.encode() not in raw


def test_no_record_mode_and_unknown_stack(capsys, env):
    before = len(_verification_records(env))
    code, out, _ = run(capsys, "verify", "--state", str(EXPORT), "--stack", STACK, "--store", env, "--no-record")
    assert code == 0 and "appended" not in out
    assert len(_verification_records(env)) == before
    code, _, err = run(capsys, "verify", "--state", str(EXPORT), "--stack", "acme/web-service/staging",
                       "--store", env)
    assert code == 2 and err.count("\n") == 1  # the export is for another stack


def test_an_auditors_verification_record_never_breaks_the_organisations_chain(capsys, deployed, tmp_path,
                                                                             monkeypatch):
    """Before: `ps019 verify --state` signed its verification record with the auditor's own local key and appended
    it to the organisation's store, so `evidence verify` with the organisation's key failed from then on. Now a
    record signed by a key that does not sign the store's records is kept apart, in the auditor's own store."""
    from ps019.evidence import open_store, verify_store
    from ps019.evidence.signing import load_signer

    url, root = deployed
    monkeypatch.delenv("PS019_EVIDENCE_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "xdg"))
    code, org_key, _ = run(capsys, "evidence", "public-key", "--format", "base64")  # what the platform team hands over
    org_key = org_key.strip()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "auditor"))  # the auditor's machine: their own key and store
    auditor = load_signer()
    before = open_store(url).count()
    code, out, err = run(capsys, "verify", "--state", str(EXPORT), "--stack", STACK, "--store", url,
                         "--public-key", org_key)
    assert code == 0, out + err
    assert "kept apart" in out and open_store(url).count() == before
    code, out, err = run(capsys, "evidence", "verify", "--store", url, "--public-key", org_key)
    assert code == 0 and out.startswith("OK"), out + err
    own = f"sqlite://{tmp_path / 'auditor' / 'ps019' / 'evidence.db'}"
    [kept] = [s for s in open_store(own).query(kind="verification")]
    assert kept.document["payload"]["matched"] and kept.envelope["signatures"][0]["keyid"] == auditor.keyid
    assert verify_store(open_store(own), {auditor.keyid: auditor.public_key}).ok
    # Elsewhere on purpose, or not at all: --record-store, --no-record; never silently into the organisation's store.
    chosen = f"sqlite://{tmp_path / 'chosen.db'}"
    code, out, err = run(capsys, "verify", "--state", str(EXPORT), "--stack", STACK, "--store", url,
                         "--public-key", org_key, "--record-store", chosen)
    assert code == 0 and open_store(chosen).count() == 1 and open_store(url).count() == before
    code, out, err = run(capsys, "verify", "--state", str(EXPORT), "--stack", STACK, "--store", url,
                         "--public-key", org_key, "--record-store", url)
    assert code == 2 and "--record-store" in err and len(err.strip().splitlines()) == 1
    assert open_store(url).count() == before


def test_compare_state_unit():
    from ps019.evidence.audit import compare_state

    record = {"resources": [{"urn": "a", "inputs_digest": "1"}, {"urn": "b", "inputs_digest": "2"},
                            {"urn": "gone", "op": "delete"}, {"urn": "u", "inputs_digest": None}]}
    same = compare_state(record, {"a": ("t", "1"), "b": ("t", "2"), "u": ("t", "x")})
    assert same.matched and same.compared == 3
    drift = compare_state(record, {"a": ("t", "1"), "b": ("t", "3"), "gone": ("t", "9"), "new": ("t", "0")})
    assert (drift.missing, drift.unexpected, drift.changed) == (["u"], ["gone", "new"], ["b"])
