"""The gate with CI identity proven by an OIDC ID token, through the pack's fact gathering (``ps019.pack.facts``).

The attacks are the insider's from issue 11: ``CI=true``/``GITHUB_*`` set by hand, an approver posing as
``GITHUB_ACTOR=deploy-bot``, someone naming an on-call operator to ride their grant, an approved request deployed
with other code, and a token replayed from an earlier run. The issuer is a throwaway local one
(``ps019.oidc.local_issuer``) whose JWKS the pack config pins."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ps019.gate import change_request as crm
from ps019.gate import signing
from ps019.oidc.local_issuer import LocalIssuer, github_claims

STACK = "acme/web/prod"
REPO = "acme/web"
COMMIT = "1" * 40
OTHER_COMMIT = "2" * 40
KEYS = {n: signing.generate_private_key() for n in ("alice", "bob", "olivia", "carol")}
ENV_CI = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": COMMIT,
          "GITHUB_ACTOR": "deploy-bot", "GITHUB_REPOSITORY": REPO, "GITHUB_RUN_ID": "77"}


@pytest.fixture(scope="module")
def issuer():
    return LocalIssuer("https://token.actions.example.test")


def trusted(name: str, roles=("approver",), identity: str | None = None) -> dict:
    return {"publicKey": signing.public_key_text(KEYS[name]), "identity": identity or f"{name}@example.com",
            "roles": list(roles)}


def settings(issuer: LocalIssuer, tmp_path, **gate_over) -> dict:
    gate = {
        "trustedKeys": [trusted("alice"), trusted("bob"), trusted("olivia", ("operator",), "olivia-oncall"),
                        trusted("carol", ())],  # carol, the author, signs her requests (role author)
        "identityAliases": {"bob@example.com": ["bob-gh"]},
        "oidc": {
            "issuers": [{"name": "github", "issuer": issuer.issuer, "provider": "github", "audiences": ["ps019"],
                         "jwks": issuer.jwks()}],
            "rules": {"production": [{"issuer": "github", "repository": [REPO], "ref": ["refs/heads/main"],
                                      "refProtected": True}]},
        },
        **gate_over,
    }
    return {"gate": gate, "identity": {"lookup": "off"}, "evidence": {"store_url": f"sqlite:///{tmp_path / 'ev.db'}"}}


def token(issuer: LocalIssuer, *, ref="refs/heads/main", sha=COMMIT, actor="deploy-bot", run_id="77",
          repository=REPO, jti=None) -> str:
    claims = github_claims(repository=repository, ref=ref, sha=sha, actor=actor, run_id=run_id)
    if jti:
        claims["jti"] = jti
    return issuer.mint({**claims, "aud": "ps019"})


def change_request(tmp_path, commit=COMMIT, approvers=("alice", "bob"), author_signer: str | None = "carol") -> str:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    request = crm.ChangeRequest(
        ticket="CHG-42", change_class="normal", summary="s", owner="team", author="carol@example.com",
        artifact={"git_commit": commit}, stacks=[STACK], test_evidence="https://ci/1", rollback_plan="https://rb",
        monitoring_plan="https://mon", created_at=now - timedelta(hours=1), expires_at=now + timedelta(hours=24))
    if author_signer:  # the author's own signature (production asks for it), or someone else's posing as it
        request.approvals.append(crm.sign_approval(request, KEYS[author_signer], approver=f"{author_signer}@example.com",
                                                   role="author", signed_at=now - timedelta(minutes=40)))
    for name in approvers:
        request.approvals.append(crm.sign_approval(request, KEYS[name], approver=f"{name}@example.com",
                                                   role="approver", signed_at=now - timedelta(minutes=30)))
    path = tmp_path / "cr.json"
    path.write_text(json.dumps(request.model_dump(mode="json")))
    return str(path)


def run_for(tmp_path, raw: dict, environ: dict, dry_run=True):
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings

    env = {"PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod",
           "PULUMI_DRY_RUN": "true" if dry_run else "false", "XDG_DATA_HOME": str(tmp_path / "xdg"), **environ}
    return Run("ps019", "0.0.0", Settings(raw=raw), {}, {}, environ=env)


def gather(tmp_path, raw: dict, environ: dict, dry_run=True):
    from ps019.pack import facts

    return facts.gather(run_for(tmp_path, raw, environ, dry_run))


def violations(facts) -> dict:
    return facts.decision.evidence()["violations"]


# --- the honest path --------------------------------------------------------------------------------------------------


def test_a_verified_token_on_main_with_two_approvals_passes_and_is_recorded(issuer, tmp_path):
    f = gather(tmp_path, settings(issuer, tmp_path), {"PS019_ID_TOKEN": token(issuer),
                                                       "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.allowed, violations(f)
    assert (f.deployer.identity, f.deployer.verified_by) == ("deploy-bot", "oidc")
    recorded = f.decision.evidence()["ci_identity"]
    assert recorded["verified"] and recorded["jti"] and recorded["run"] == "77/1" and recorded["sha"] == COMMIT


# --- environment variables never count -----------------------------------------------------------------------------------


def test_ci_environment_variables_never_satisfy_a_tier_that_requires_oidc(issuer, tmp_path):
    f = gather(tmp_path, settings(issuer, tmp_path), {**ENV_CI, "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.blocked
    text = " ".join(violations(f)["PS019-GATE-004"])
    assert "no CI OIDC ID token found" in text
    assert f.deployer.verified_by != "oidc" and f.commit is None  # GITHUB_SHA is not the commit either


def test_without_any_identity_configuration_production_is_never_satisfied_by_env_vars(tmp_path):
    raw = {"gate": {"trustedKeys": [trusted("alice"), trusted("bob")]}, "identity": {"lookup": "off"},
           "evidence": {"store_url": f"sqlite:///{tmp_path / 'ev.db'}"}}
    f = gather(tmp_path, raw, {**ENV_CI, "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.blocked
    text = " ".join(violations(f)["PS019-GATE-004"])
    assert "gate.oidc.rules.production" in text and "gate.approvedPath.deployIdentityPatterns" in text


def test_a_token_for_a_feature_branch_fails_even_when_github_ref_says_main(issuer, tmp_path):
    f = gather(tmp_path, settings(issuer, tmp_path), {**ENV_CI, "PS019_ID_TOKEN": token(issuer, ref="refs/heads/x"),
                                                       "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.blocked
    assert "ref refs/heads/x is not one of" in " ".join(violations(f)["PS019-GATE-004"])


def test_a_token_of_another_repository_fails(issuer, tmp_path):
    f = gather(tmp_path, settings(issuer, tmp_path), {"PS019_ID_TOKEN": token(issuer, repository="evil/web"),
                                                       "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.blocked and "repository evil/web" in " ".join(violations(f)["PS019-GATE-004"])


def test_the_tokens_sha_binds_the_approved_commit(issuer, tmp_path):
    """An approved request for COMMIT cannot carry other code: the token says what the job builds."""
    f = gather(tmp_path, settings(issuer, tmp_path), {**ENV_CI, "PS019_ID_TOKEN": token(issuer, sha=OTHER_COMMIT),
                                                       "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.decision.blocked
    assert f"but this run deploys {OTHER_COMMIT}" in " ".join(violations(f)["PS019-GATE-001"])
    g = gather(tmp_path, settings(issuer, tmp_path), {"PS019_GIT_COMMIT": COMMIT,
                                                       "PS019_ID_TOKEN": token(issuer, sha=OTHER_COMMIT),
                                                       "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert g.decision.blocked and "disagrees with the CI OIDC ID token's sha" in " ".join(violations(g)["PS019-GATE-001"])


def test_an_approver_cannot_deploy_her_own_change_by_calling_herself_deploy_bot(issuer, tmp_path):
    f = gather(tmp_path, settings(issuer, tmp_path), {**ENV_CI, "GITHUB_ACTOR": "deploy-bot",
                                                       "PS019_ID_TOKEN": token(issuer, actor="bob-gh"),
                                                       "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert f.deployer.identity == "bob-gh"
    assert f.decision.blocked
    assert "the approver is the deployer" in " ".join(violations(f)["PS019-GATE-003"])


def test_naming_an_operator_in_github_actor_does_not_ride_their_grant(issuer, tmp_path):
    from ps019.evidence import load_signer, open_store
    from ps019.gate.breakglass import BreakGlassGrant, VerifiedIdentity, grant_record, sign_document

    now = datetime.now(timezone.utc).replace(microsecond=0)
    grant = sign_document(BreakGlassGrant(
        grant_id="BG-20261203-0123456789ab", stack=STACK, operator="olivia-oncall", identity_source="ci-oidc",
        reason="outage", incident="INC-7", issued_at=now - timedelta(minutes=1), expires_at=now + timedelta(hours=1),
        key_id=""), KEYS["olivia"])
    raw = settings(issuer, tmp_path)
    with open_store(raw["evidence"]["store_url"]) as store:
        store.append(grant_record(grant, VerifiedIdentity("olivia-oncall", "ci-oidc", "oidc"), "production"),
                     load_signer())  # the evidence key the pack trusts
    ridden = gather(tmp_path, raw, {**ENV_CI, "GITHUB_ACTOR": "olivia-oncall", "GITHUB_REF": "refs/heads/hotfix"})
    assert not ridden.grant.valid and ridden.decision.blocked
    own = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, actor="olivia-oncall", ref="refs/heads/hotfix")})
    assert own.grant.valid, own.grant.problems
    assert own.decision.change_class == "emergency" and own.decision.allowed, violations(own)


# --- replay ---------------------------------------------------------------------------------------------------------------


def _deploy(tmp_path, raw, environ):
    """A whole update pass's record, as the pack writes it at AnalyzeStack."""
    from ps019.pack import facts as facts_mod

    run = run_for(tmp_path, raw, environ, dry_run=False)
    f = facts_mod.gather(run)
    run._facts = f
    result = facts_mod.emit_record(run, f, kind="update")
    assert result.status in ("stored", "appended", "written") or result.record_id, result
    return f


def test_a_token_replayed_from_an_earlier_run_is_refused(issuer, tmp_path):
    raw = settings(issuer, tmp_path)
    stolen = token(issuer, jti="jti-run-77")
    env = {"PS019_ID_TOKEN": stolen, "PS019_CHANGE_REQUEST": change_request(tmp_path)}
    first = _deploy(tmp_path, raw, env)
    assert first.decision.allowed, violations(first)
    again = gather(tmp_path, raw, env, dry_run=False)
    assert again.decision.blocked
    assert "jti-run-77 was already used by update record" in " ".join(violations(again)["PS019-GATE-004"])


def test_a_second_deployment_from_the_same_ci_run_is_refused(issuer, tmp_path):
    raw = settings(issuer, tmp_path)
    cr = change_request(tmp_path)
    first = _deploy(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="91"), "PS019_CHANGE_REQUEST": cr})
    assert first.decision.allowed, violations(first)
    again = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="91"), "PS019_CHANGE_REQUEST": cr},
                   dry_run=False)
    assert again.decision.blocked and "CI run 91/1 already deployed" in " ".join(violations(again)["PS019-GATE-004"])
