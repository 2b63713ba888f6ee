"""The operator's view: `ps019 break-glass` and `ps019 exception` end to end against a sqlite store, with the
operator's identity verified by STS on the loopback moto server (or by the CI identity when there are no AWS
credentials)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ps019.cli import main
from ps019.gate import signing
from ps019.gate.breakglass import check_break_glass, load_break_glass_records

MOTO_ARN = "arn:aws:sts::123456789012:user/moto"  # what moto's GetCallerIdentity answers
STACK = "acme/payments/prod"


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI configures structlog for its process; give the next test back what it had."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def setup(tmp_path, moto_endpoint, evidence_home, monkeypatch):
    keys = {}
    for name in ("operator", "reviewer", "approver", "intruder"):
        private = signing.generate_private_key()
        signing.write_keypair(private, tmp_path / "keys", name)
        keys[name] = private
    trusted = [
        {"publicKey": signing.public_key_text(keys["operator"]), "identity": MOTO_ARN, "roles": ["operator"]},
        {"publicKey": signing.public_key_text(keys["reviewer"]), "identity": "carol@example.com",
         "roles": ["reviewer"]},
        {"publicKey": signing.public_key_text(keys["approver"]), "identity": "dave@example.com",
         "roles": ["approver", "security"]},
    ]
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"ps019-settings": {
        "gate": {"trustedKeys": trusted},
        "breakGlass": {"maxTtlHours": 4, "reviewSlaHours": 48},
        "identity": {"endpoints": {"sts": moto_endpoint, "iam": moto_endpoint}},
    }}))
    monkeypatch.setenv("PS019_POLICY_PACK_CONFIG", str(config))
    monkeypatch.setenv("PS019_EVIDENCE_STORE", f"sqlite://{tmp_path / 'evidence.db'}")
    return {"keys": tmp_path / "keys", "config": config, "url": f"sqlite://{tmp_path / 'evidence.db'}"}


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def open_grant(capsys, setup, *extra):
    return run(capsys, "break-glass", "open", "--stack", STACK, "--reason", "payments API down",
               "--incident", "INC-42", "--ttl", "2h", "--waive", "PS019-IAM-001",
               "--key", str(setup["keys"] / "operator.key"), *extra)


def gate_settings(setup):
    from ps019.gate.settings import GateSettings

    return GateSettings.model_validate(json.loads(setup["config"].read_text())["ps019-settings"]["gate"])


def test_open_deploy_close_review_list(capsys, setup):
    code, out, err = open_grant(capsys, setup)
    assert code == 0, err
    grant_id = out.strip()
    assert grant_id.startswith("BG-") and "\n" not in grant_id
    assert f"opened for {STACK} by {MOTO_ARN} (sts:GetCallerIdentity)" in err

    # What the pack sees during `pulumi up` by the same identity:
    from ps019.evidence import open_store

    with open_store(setup["url"]) as store:
        records = load_break_glass_records(store, STACK)
        result = check_break_glass(records, STACK, MOTO_ARN, datetime.now(timezone.utc), gate_settings(setup))
    assert result.valid and result.grant_id == grant_id and result.waived_controls == ("PS019-IAM-001",)
    assert records[0].change_class == "emergency" and records[0].actor.verified_by == "sts:GetCallerIdentity"

    code, out, err = run(capsys, "break-glass", "review", grant_id, "--reviewer", "carol@example.com",
                         "--key", str(setup["keys"] / "reviewer.key"), "--notes", "x")
    assert code == 2 and "still active" in err

    code, out, err = run(capsys, "break-glass", "close", grant_id, "--key", str(setup["keys"] / "operator.key"),
                         "--notes", "rolled back the bad config")
    assert code == 0, err
    assert "review by a different person is due within 48h" in err

    code, out, err = run(capsys, "break-glass", "list", "--stack", STACK, "--format", "json")
    rows = json.loads(out)
    assert [(r["grant_id"], r["state"]) for r in rows] == [(grant_id, "closed")]
    assert rows[0]["review"].startswith("due by") and not rows[0]["review_overdue"]

    code, out, err = run(capsys, "break-glass", "review", grant_id, "--reviewer", "carol@example.com",
                         "--key", str(setup["keys"] / "reviewer.key"), "--notes", "cert expiry; alerting added",
                         "--link", "https://wiki.example.com/pir/42", "--link", "https://jira.example.com/INC-42")
    assert code == 0, err
    rows = json.loads(run(capsys, "break-glass", "list", "--format", "json")[1])
    assert rows[0]["reviewer"] == "carol@example.com"
    assert rows[0]["review_links"] == ["https://wiki.example.com/pir/42", "https://jira.example.com/INC-42"]

    code, out, err = run(capsys, "break-glass", "list")
    assert code == 0 and "closed" in out and grant_id[:12] in out

    # The whole story verifies in the evidence chain.
    from ps019.evidence import load_signer, open_store, verify_store

    signer = load_signer()
    with open_store(setup["url"]) as store:
        assert verify_store(store, {signer.keyid: signer.public_key}).ok


def test_review_by_the_operator_themself_refused(capsys, setup):
    grant_id = open_grant(capsys, setup)[1].strip()
    run(capsys, "break-glass", "close", grant_id, "--key", str(setup["keys"] / "operator.key"))
    code, out, err = run(capsys, "break-glass", "review", grant_id, "--reviewer", MOTO_ARN,
                         "--key", str(setup["keys"] / "operator.key"), "--notes", "all fine")
    assert code == 2
    assert "must be recorded by a different person" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (("--waive", "all"), "no wildcards, no 'all'"),
    (("--waive", "PS019-NOPE-001"), "no such control"),
    (("--waive", "PS019-EVID-001"), "non-waivable"),
    (("--ttl", "9h"), "exceeds the maximum of 4h"),
])
def test_open_refusals(capsys, setup, argv, message):
    base = ["break-glass", "open", "--stack", STACK, "--reason", "r", "--incident", "INC-1", "--ttl", "1h",
            "--key", str(setup["keys"] / "operator.key")]
    code, out, err = run(capsys, *base, *argv)
    assert code == 2 and message in err and out == ""


def test_open_with_an_untrusted_or_foreign_key_refused(capsys, setup):
    code, out, err = open_grant(capsys, setup, "--key", str(setup["keys"] / "intruder.key"))
    assert code == 2 and "not among the gate's trusted keys" in err
    code, out, err = open_grant(capsys, setup, "--key", str(setup["keys"] / "reviewer.key"))
    assert code == 2 and "needs one of: operator" in err


def test_ci_environment_variables_never_identify_an_operator(capsys, setup, monkeypatch):
    """GITHUB_ACTIONS / GITHUB_ACTOR (or CI=true) are assertions: with no AWS credentials and no CI OIDC ID token,
    break-glass refuses to say who you are."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    for markers in ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/payments", "GITHUB_ACTOR": "alice"},
                    {"CI": "true", "CI_ACTOR": "alice"}):
        for key, value in markers.items():
            monkeypatch.setenv(key, value)
        code, out, err = open_grant(capsys, setup)
        assert code == 2 and "cannot verify who you are" in err, err


def test_operator_in_a_ci_job_is_identified_by_the_jobs_oidc_id_token(capsys, setup, monkeypatch):
    from ps019.oidc.local_issuer import LocalIssuer, github_claims

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    config = json.loads(setup["config"].read_text())
    with LocalIssuer() as issuer:
        issuer.job_claims = github_claims(repository="acme/payments", ref="refs/heads/main", sha="a" * 40,
                                          actor="olivia-oncall", run_id="9")
        gate = config["ps019-settings"]["gate"]
        gate["oidc"] = {"issuers": [{"name": "github", "issuer": issuer.issuer, "provider": "github",
                                     "audiences": ["ps019"], "jwks": issuer.jwks(),
                                     "repositories": ["acme/payments"]}]}  # whose tokens name an operator
        gate["trustedKeys"][0]["identity"] = "olivia-oncall"  # the operator key belongs to the CI login
        setup["config"].write_text(json.dumps(config))
        for key, value in issuer.github_job_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("GITHUB_ACTOR", "someone-else")  # ignored: the token names the actor
        code, out, err = open_grant(capsys, setup)
        assert code == 0, err
        assert "by olivia-oncall (CI OIDC ID token of" in err
        # The operator closes their own grant with the key that opened it, wherever they are.
        for key in issuer.github_job_env():
            monkeypatch.delenv(key)
        grant_id = out.strip()
        code, out, err = run(capsys, "break-glass", "close", grant_id, "--key", str(setup["keys"] / "operator.key"))
        assert code == 0, err


def test_exception_add_and_list(capsys, setup):
    urn = "urn:pulumi:prod::payments::aws:s3/bucket:Bucket::logs"
    code, out, err = run(capsys, "exception", "add", "--control", "PS019-IAM-001", "--resource", urn,
                         "--stack", STACK, "--reason", "legacy bucket until SEC-12", "--expires", "30d",
                         "--approved-by", "dave@example.com", "--key", str(setup["keys"] / "approver.key"))
    assert code == 0, err
    exception_id = out.strip()
    assert exception_id.startswith("EX-")
    rows = json.loads(run(capsys, "exception", "list", "--format", "json")[1])
    assert [(r["exception_id"], r["status"]) for r in rows] == [(exception_id, "active")]
    # An operator key cannot approve an exception:
    code, out, err = run(capsys, "exception", "add", "--control", "PS019-IAM-001", "--resource", urn,
                         "--stack", STACK, "--reason", "r", "--expires", "2030-01-01",
                         "--approved-by", MOTO_ARN, "--key", str(setup["keys"] / "operator.key"))
    assert code == 2 and "lacks role approver/security" in err
    code, out, err = run(capsys, "exception", "add", "--control", "PS019-IAM-001", "--resource", "*",
                         "--stack", STACK, "--reason", "r", "--expires", "7d",
                         "--approved-by", "dave@example.com", "--key", str(setup["keys"] / "approver.key"))
    assert code == 2 and "must be a Pulumi URN" in err
    code, out, err = run(capsys, "exception", "list")
    assert code == 0 and exception_id in out


def test_exception_list_reports_expired(capsys, setup):
    from ps019.evidence import load_signer, open_store
    from ps019.gate.exceptions import add_exception

    key = signing.load_private_key(setup["keys"] / "approver.key")
    past = datetime.now(timezone.utc) - timedelta(days=10)
    with open_store(setup["url"]) as store:
        add_exception(store, load_signer(), key, control_id="PS019-IAM-001",
                      resource="urn:pulumi:prod::payments::aws:s3/bucket:Bucket::old", stack_ref=STACK,
                      reason="r", expires_at=past + timedelta(days=1), approved_by="dave@example.com",
                      gate_settings=gate_settings(setup), now=past)
    rows = json.loads(run(capsys, "exception", "list", "--stack", STACK, "--format", "json")[1])
    assert rows[0]["status"] == "ignored" and rows[0]["reason"].startswith("expired at")


def test_overdue_review_listed_and_blocks_next_open(capsys, setup):
    from ps019.evidence import load_signer, open_store
    from ps019.gate.breakglass import VerifiedIdentity, open_grant as open_grant_lib

    key = signing.load_private_key(setup["keys"] / "operator.key")
    long_ago = datetime.now(timezone.utc) - timedelta(days=5)
    with open_store(setup["url"]) as store:
        old = open_grant_lib(store, load_signer(), key, VerifiedIdentity(MOTO_ARN, "aws-sts", "sts"), STACK,
                             reason="old incident", incident="INC-1", ttl=timedelta(hours=1), waive=[],
                             gate_settings=gate_settings(setup), now=long_ago)
    capsys.readouterr()  # drop the library's own log line
    rows = json.loads(run(capsys, "break-glass", "list", "--format", "json")[1])
    assert rows[0]["grant_id"] == old.grant_id and rows[0]["state"] == "expired" and rows[0]["review_overdue"]
    code, out, err = run(capsys, "break-glass", "list")
    assert "OVERDUE" in out and "1 review(s) overdue" in err
    code, out, err = open_grant(capsys, setup)
    assert code == 2 and f"blocked until the overdue review is recorded" in err and old.grant_id in err


def test_governance_records_carry_the_tier_of_the_stack_they_concern(capsys, setup):
    """Before: close, review and exception records were stored with environment `unknown`, so an auditor's
    `evidence list --environment production` hid them."""
    grant_id = open_grant(capsys, setup)[1].strip()
    assert run(capsys, "break-glass", "close", grant_id, "--key", str(setup["keys"] / "operator.key"),
               "--notes", "done")[0] == 0
    assert run(capsys, "break-glass", "review", grant_id, "--reviewer", "carol@example.com",
               "--key", str(setup["keys"] / "reviewer.key"), "--notes", "reviewed")[0] == 0
    urn = "urn:pulumi:prod::payments::aws:s3/bucket:Bucket::legacy"
    assert run(capsys, "exception", "add", "--control", "PS019-IAM-001", "--resource", urn, "--stack", STACK,
               "--reason", "legacy bucket", "--expires", "30d", "--approved-by", "dave@example.com",
               "--key", str(setup["keys"] / "approver.key"))[0] == 0
    code, out, err = run(capsys, "evidence", "list", "--store", setup["url"], "--environment", "production",
                         "--format", "json", "--limit", "0")
    assert code == 0, err
    kinds = sorted(r["kind"] for r in json.loads(out))
    assert kinds == ["break_glass_close", "break_glass_open", "break_glass_review", "exception"]
