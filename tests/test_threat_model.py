"""docs/threat-model.md's hardened production configuration, loaded from the document itself and run through the
pack's fact gathering against moto (STS, IAM) and a throwaway local OIDC issuer: the settings it lists must let an
approved change from the deploy job through and stop everything an insider can do with environment variables."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from ps019.gate import change_request as crm
from ps019.gate import signing
from ps019.oidc.local_issuer import LocalIssuer, github_claims

pytestmark = pytest.mark.moto

DOC = Path(__file__).resolve().parents[1] / "docs" / "threat-model.md"
ACCOUNT = "123456789012"  # moto's account stands in for the document's 111111111111
COMMIT = "3" * 40
KEYS = {n: signing.generate_private_key() for n in ("alice", "bob")}
AUTHOR_KEY = signing.generate_private_key()  # carol's: the hardened config wants the author's signature


def hardened_block() -> dict:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### The hardened production configuration", 1)[1]
    return json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))


@pytest.fixture
def deploy_role(moto_endpoint, monkeypatch):
    """Credentials of the document's deploy role (ps019-deploy), assumed in moto."""
    aws = boto3.session.Session(region_name="us-east-1")
    iam = aws.client("iam", endpoint_url=moto_endpoint)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
    try:
        iam.create_role(RoleName="ps019-deploy", AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    creds = aws.client("sts", endpoint_url=moto_endpoint).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/ps019-deploy", RoleSessionName="gha-run-1")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    from ps019.aws.identity import clear_cache

    clear_cache()
    yield f"arn:aws:sts::{ACCOUNT}:assumed-role/ps019-deploy/gha-run-1"
    clear_cache()


@pytest.fixture
def hardened(tmp_path, moto_endpoint):
    issuer = LocalIssuer("https://token.actions.githubusercontent.com")
    raw = json.loads(json.dumps(hardened_block()["ps019-settings"]).replace("111111111111", ACCOUNT))
    jwks_file = tmp_path / "github-jwks.json"
    jwks_file.write_text(json.dumps(issuer.jwks()))
    raw["identity"].update(region="us-east-1", endpoints={"sts": moto_endpoint, "iam": moto_endpoint})
    raw["gate"]["oidc"]["issuers"][0]["jwksFile"] = str(jwks_file)
    raw["gate"]["trustedKeys"] = [{"publicKey": signing.public_key_text(k), "identity": f"{n}@example.com",
                                   "roles": ["approver"]} for n, k in KEYS.items()] + [
        {"publicKey": signing.public_key_text(AUTHOR_KEY), "identity": "carol@example.com", "roles": []}]
    raw["evidence"] = {"store_url": f"sqlite:///{tmp_path / 'evidence.db'}"}
    return issuer, raw


def job_token(issuer, **over) -> str:
    claims = github_claims(repository="acme/web", ref="refs/heads/main", sha=COMMIT, actor="deploy-bot", run_id="5",
                           environment="production", workflow="deploy-prod.yml")
    return issuer.mint({**claims, "aud": "ps019", **over})


def change_request(tmp_path, author_signs: bool = True) -> str:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    request = crm.ChangeRequest(
        ticket="CHG-7", change_class="normal", summary="s", owner="team", author="carol@example.com",
        artifact={"git_commit": COMMIT}, stacks=["acme/web/prod"], test_evidence="https://ci/5",
        rollback_plan="https://rb", monitoring_plan="https://mon", created_at=now, expires_at=now + timedelta(hours=8))
    if author_signs:
        request.approvals.append(crm.sign_approval(request, AUTHOR_KEY, approver="carol@example.com", role="author",
                                                   signed_at=now))
    for name, key in KEYS.items():
        request.approvals.append(crm.sign_approval(request, key, approver=f"{name}@example.com", role="approver",
                                                   signed_at=now))
    path = tmp_path / "cr.json"
    path.write_text(json.dumps(request.model_dump(mode="json")))
    return str(path)


def gather(tmp_path, raw, environ):
    from ps019.pack import facts
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings

    env = {**os.environ, "PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod",
           "PULUMI_DRY_RUN": "true", **environ}
    return facts.gather(Run("ps019", "0.0.0", Settings(raw=raw), {}, {}, environ=env))


def test_the_hardened_configuration_is_valid_as_written():
    from ps019.pack.settings import Settings

    settings = Settings(raw=hardened_block()["ps019-settings"])
    assert {k: v for k, v in settings.validate_all().items() if k != "gate"} == {}
    # gate.trustedKeys holds a placeholder in the document; everything else in gate validates:
    gate = dict(hardened_block()["ps019-settings"]["gate"], trustedKeys=[])
    assert Settings(raw={"gate": gate}).section("gate") is not None


def test_an_approved_change_from_the_deploy_job_passes(tmp_path, hardened, deploy_role):
    issuer, raw = hardened
    f = gather(tmp_path, raw, {"PS019_ID_TOKEN": job_token(issuer), "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.allowed, f.decision.evidence()["violations"]
    assert (f.deployer.verified_by, f.deployer.sts_arn) == ("oidc", deploy_role)
    from ps019.controls.registry import get
    from ps019.model import ResourceView

    stack = ResourceView(urn="urn:pulumi:prod::web::pulumi:pulumi:Stack::web-prod", type="pulumi:pulumi:Stack",
                         name="web-prod", props={})
    caller = get("PS019-IDENTITY-003")
    assert list(caller.check(stack, f.context, caller.params(None))) == []  # identity.allowed_deploy_roles


@pytest.mark.parametrize("over, reason", [
    ({"job_workflow_ref": "acme/web/.github/workflows/other.yml@refs/heads/main",
      "workflow_ref": "acme/web/.github/workflows/other.yml@refs/heads/main"}, "workflow"),
    ({"environment": "staging"}, "environment staging"),
    ({"ref_protected": "false"}, "ref_protected"),
])
def test_a_token_from_another_workflow_environment_or_unprotected_ref_is_refused(tmp_path, hardened, deploy_role,
                                                                                 over, reason):
    issuer, raw = hardened
    f = gather(tmp_path, raw, {"PS019_ID_TOKEN": job_token(issuer, **over),
                               "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.blocked and reason in " ".join(f.decision.evidence()["violations"]["PS019-GATE-004"])


def test_environment_variables_alone_and_an_unapproved_change_are_blocked(tmp_path, hardened, deploy_role):
    issuer, raw = hardened
    impostor = gather(tmp_path, raw, {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main",
                                      "GITHUB_SHA": COMMIT, "GITHUB_ACTOR": "deploy-bot",
                                      "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert impostor.decision.blocked and impostor.deployer.verified_by == "sts"  # verifiedBy: ["oidc"] refuses it
    assert "approved path needs one of ['oidc']" in " ".join(impostor.decision.evidence()["violations"]["PS019-GATE-004"])
    unapproved = gather(tmp_path, raw, {"PS019_ID_TOKEN": job_token(issuer)})
    assert unapproved.decision.blocked and unapproved.decision.evidence()["violations"]["PS019-GATE-001"]


def test_a_request_its_author_did_not_sign_is_refused(tmp_path, hardened, deploy_role):
    issuer, raw = hardened
    f = gather(tmp_path, raw, {"PS019_ID_TOKEN": job_token(issuer),
                               "PS019_CHANGE_REQUEST": change_request(tmp_path, author_signs=False)})
    assert f.decision.blocked and "did not sign" in " ".join(f.decision.evidence()["violations"]["PS019-GATE-003"])
