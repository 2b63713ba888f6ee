"""Attack: an insider points boto3 at their own "STS" through the environment or files they can write, so that
``sts:GetCallerIdentity`` answers with whatever ARN they like (the deploy role, or an on-call operator's ARN whose
break-glass grant they then ride). The identity edge must build its clients only from the pack config's endpoints,
ignore every environment / config-file endpoint override, and say in the record what it ignored.

``fake_sts`` is a loopback HTTP server answering GetCallerIdentity with any ARN; ``no_internet`` fails name resolution
for everything but loopback, so the AWS default endpoint is observed being chosen without any packet leaving."""

from __future__ import annotations

import gzip
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import botocore
import pytest

from ps019.aws.identity import clear_cache, lookup_deploy_identity
from ps019.aws.settings import IdentitySettings

FAKE_ARN = "arn:aws:sts::111111111111:assumed-role/ps019-deploy/spoofed"
OPERATOR_ARN = "arn:aws:sts::111111111111:assumed-role/BreakGlass/olivia"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path):
    clear_cache()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    yield
    clear_cache()


def _ruleset_dir(tmp_path: Path, url: str) -> Path:
    """An AWS_DATA_PATH whose STS endpoint rule set sends every request to ``url``."""
    builtin = Path(botocore.__file__).parent / "data" / "sts" / "2011-06-15" / "endpoint-rule-set-1.json.gz"
    rules = json.loads(gzip.decompress(builtin.read_bytes()))
    rules["rules"] = [{"conditions": [], "type": "endpoint", "endpoint": {"url": url, "properties": {}, "headers": {}}}]
    target = tmp_path / "data" / "sts" / "2011-06-15"
    target.mkdir(parents=True)
    (target / "endpoint-rule-set-1.json").write_text(json.dumps(rules))
    return tmp_path / "data"


def _override(kind: str, fake_url: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    """(environment, the override's name as the record reports it)."""
    if kind == "AWS_ENDPOINT_URL_STS":
        return {"AWS_ENDPOINT_URL_STS": fake_url}, "AWS_ENDPOINT_URL_STS"
    if kind == "AWS_ENDPOINT_URL":
        return {"AWS_ENDPOINT_URL": fake_url}, "AWS_ENDPOINT_URL"
    if kind == "config-endpoint_url":
        path = tmp_path / "config-endpoint"
        path.write_text(f"[default]\nregion = us-east-1\nendpoint_url = {fake_url}\n")
        return {"AWS_CONFIG_FILE": str(path)}, "endpoint_url"
    if kind == "config-services":
        path = tmp_path / "config-services"
        path.write_text(f"[default]\nregion = us-east-1\nservices = spoof\n\n[services spoof]\nsts =\n"
                        f"  endpoint_url = {fake_url}\n")
        return {"AWS_CONFIG_FILE": str(path)}, "services"
    if kind == "AWS_DATA_PATH":
        return {"AWS_DATA_PATH": str(_ruleset_dir(tmp_path, fake_url))}, "AWS_DATA_PATH"
    if kind == "HTTPS_PROXY":
        # A proxy plus a CA bundle the insider controls is a man in the middle for the TLS connection to STS.
        bundle = tmp_path / "ca.pem"
        bundle.write_text("not a CA\n")
        return {"HTTPS_PROXY": fake_url, "AWS_CA_BUNDLE": str(bundle)}, "HTTPS_PROXY"
    raise AssertionError(kind)


OVERRIDES = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "config-endpoint_url", "config-services", "AWS_DATA_PATH",
             "HTTPS_PROXY"]


@pytest.mark.parametrize("kind", OVERRIDES)
def test_fake_sts_named_by_the_environment_or_config_files_is_never_asked(kind, fake_sts, no_internet, monkeypatch,
                                                                           tmp_path):
    fake_sts.arn = FAKE_ARN
    env, name = _override(kind, fake_sts.url, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    identity = lookup_deploy_identity(IdentitySettings(lookup="on", max_attempts=1, connect_timeout_seconds=1))
    assert fake_sts.requests == []
    assert identity.arn != FAKE_ARN and identity.error  # AWS's own endpoint is unreachable in tests
    assert any(host.startswith("sts.") and host.endswith(".amazonaws.com") for host in no_internet), no_internet
    evidence = identity.to_evidence()
    assert evidence["sts_endpoint"]["source"] == "AWS default endpoint (environment and config-file overrides ignored)"
    assert name in " ".join(evidence["ignored_overrides"])
    assert fake_sts.url not in json.dumps(evidence)  # names only, never the values


@pytest.mark.moto
def test_the_pack_configs_endpoint_is_the_only_one_used(moto_endpoint, fake_sts, monkeypatch):
    fake_sts.arn = FAKE_ARN
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fake_sts.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", fake_sts.url)
    settings = IdentitySettings(lookup="on", max_attempts=1, endpoints={"sts": moto_endpoint, "iam": moto_endpoint})
    identity = lookup_deploy_identity(settings)
    assert fake_sts.requests == []
    assert identity.error is None and identity.arn and identity.arn != FAKE_ARN
    evidence = identity.to_evidence()
    assert evidence["sts_endpoint"] == {"url": moto_endpoint, "source": "pack config identity.endpoints.sts"}
    assert {"AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS"} <= set(evidence["ignored_overrides"])


def test_endpoints_in_the_pack_config_must_be_plain_http_urls():
    from pydantic import ValidationError

    for bad in ("ftp://x", "http://user:secret@127.0.0.1:1", "127.0.0.1:1", "http://h/?q=1"):
        with pytest.raises(ValidationError):
            IdentitySettings(endpoints={"sts": bad})
    with pytest.raises(ValidationError):
        IdentitySettings(region="us-east-1.evil.example")


# --- through the pack's fact gathering: the approved path and break-glass ------------------------------------------------


def _gather(tmp_path, environ: dict, raw_settings: dict, grant=None):
    from ps019.evidence import load_signer, open_store
    from ps019.gate.breakglass import VerifiedIdentity, grant_record
    from ps019.pack import facts
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings

    url = f"sqlite:///{tmp_path / 'evidence.db'}"
    if grant is not None:
        with open_store(url) as store:
            store.append(grant_record(grant, VerifiedIdentity(grant.operator, grant.identity_source, "sts"),
                                      "production"), load_signer())  # the evidence key the pack trusts
    raw = {**raw_settings, "evidence": {"store_url": url}}
    env = {**os.environ, "PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod",
           "PULUMI_DRY_RUN": "true", "XDG_DATA_HOME": str(tmp_path / "xdg"), **environ}
    run = Run("ps019", "0.0.0", Settings(raw=raw), {}, {}, environ=env)
    return facts.gather(run)


def test_spoofed_sts_cannot_satisfy_the_approved_path(fake_sts, no_internet, monkeypatch, tmp_path):
    fake_sts.arn = FAKE_ARN
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fake_sts.url)
    raw = {"gate": {"approvedPath": {"deployIdentityPatterns": ["arn:aws:sts::111111111111:assumed-role/ps019-deploy/*"]}},
           "identity": {"lookup": "on", "max_attempts": 1, "connect_timeout_seconds": 1}}
    facts = _gather(tmp_path, {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "a" * 40,
                               "GITHUB_ACTOR": "ci-bot"}, raw)
    assert fake_sts.requests == []
    assert facts.deployer.identity != FAKE_ARN
    assert facts.decision.blocked
    assert "PS019-GATE-004" in facts.decision.evidence()["violations"]


def test_spoofed_sts_cannot_ride_an_operators_grant(fake_sts, no_internet, monkeypatch, tmp_path):
    from ps019.gate import signing
    from ps019.gate.breakglass import BreakGlassGrant, sign_document

    key = signing.generate_private_key()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    grant = sign_document(BreakGlassGrant(
        grant_id="BG-20261120-0123456789ab", stack="acme/web/prod", operator=OPERATOR_ARN, identity_source="aws-sts",
        reason="TLS cert expired", incident="INC-1", issued_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(hours=1), key_id=""), key)
    fake_sts.arn = OPERATOR_ARN
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fake_sts.url)
    raw = {"gate": {"trustedKeys": [{"publicKey": signing.public_key_text(key), "identity": OPERATOR_ARN,
                                     "roles": ["operator"]}]},
           "identity": {"lookup": "on", "max_attempts": 1, "connect_timeout_seconds": 1}}
    facts = _gather(tmp_path, {}, raw, grant)
    assert fake_sts.requests == []
    assert facts.deployer.identity != OPERATOR_ARN
    assert not facts.grant.valid and facts.decision.blocked
    # Control: the stored grant itself is good; an STS-verified operator would have been able to use it.
    from ps019.evidence import open_store
    from ps019.gate.breakglass import check_break_glass, load_break_glass_records

    with open_store(f"sqlite:///{tmp_path / 'evidence.db'}") as store:
        records = load_break_glass_records(store, "acme/web/prod")
    assert check_break_glass(records, "acme/web/prod", OPERATOR_ARN, datetime.now(timezone.utc), raw["gate"],
                             deployer_verified_by="sts").valid
