"""Break-glass and exceptions through the engine stand-in and the bundled pack, on the example production stack
(examples/web-service) plus two over-broad IAM policies the change adds.

What an operator relies on: with a grant, a direct production change passes as an emergency change naming the grant;
the controls the grant waives are advisory "overridden under grant …"; every other mandatory control still blocks;
another person cannot ride on the grant. An exception downgrades exactly the named control on the named resource."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ps019.engine import StackRef, load_stack_export, run_pass
from ps019.engine.resources import EngineResource
from ps019.gate import signing
from ps019.gate.breakglass import VerifiedIdentity, open_grant
from ps019.gate.exceptions import add_exception
from ps019.gate.settings import GateSettings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "examples" / "web-service" / "stack-export.prod.json"
STACK = "acme/web-service/prod"
KEYS = {n: signing.generate_private_key() for n in ("alice", "dave")}
TRUSTED = [{"publicKey": signing.public_key_text(KEYS["alice"]), "identity": "alice", "roles": ["operator"]},
           {"publicKey": signing.public_key_text(KEYS["dave"]), "identity": "dave@example.com",
            "roles": ["security", "approver"]}]
URN_A = "urn:pulumi:prod::web-service::aws:iam/policy:Policy::too-broad-a"
URN_B = "urn:pulumi:prod::web-service::aws:iam/policy:Policy::too-broad-b"
URN_ADMIN = "urn:pulumi:prod::web-service::aws:iam/rolePolicyAttachment:RolePolicyAttachment::admin"


@pytest.fixture(scope="module")
def resources():
    export = load_stack_export(EXPORT, StackRef.parse(STACK))
    provider = next(r for r in export.resources if r.type.startswith("pulumi:providers:aws"))
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

    def policy(urn):
        name = urn.rsplit("::", 1)[-1]
        return EngineResource(urn=urn, type="aws:iam/policy:Policy", inputs={"name": name, "policy": doc},
                              outputs={"name": name, "policy": doc}, id=name, parent=export.resources[0].urn,
                              provider=provider.urn)

    admin = EngineResource(urn=URN_ADMIN, type="aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                           inputs={"role": "app", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
                           outputs={"role": "app", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
                           id="att", parent=export.resources[0].urn, provider=provider.urn)
    return list(export.resources) + [policy(URN_A), policy(URN_B), admin]


@pytest.fixture(scope="module")
def issuer():
    from ps019.oidc.local_issuer import LocalIssuer

    with LocalIssuer() as local:
        yield local


def _job(issuer, actor):
    """The GitHub Actions job's claims: a hotfix branch, run by ``actor`` (what the ID token says)."""
    from ps019.oidc.local_issuer import github_claims

    issuer.job_claims = github_claims(repository="acme/web-service", ref="refs/heads/hotfix", sha="0" * 40,
                                      actor=actor, run_id="7", protected=False)


@pytest.fixture
def world(tmp_path, monkeypatch, issuer):
    """Its own evidence store (so grants never leak into other tests), a direct change from a hotfix branch in
    GitHub Actions by actor alice (proven by the job's OIDC ID token from a local issuer), and a pack config trusting
    alice (operator) and dave (security/approver)."""
    url = f"sqlite:///{tmp_path / 'evidence.db'}"
    monkeypatch.setenv("PS019_EVIDENCE_STORE", url)
    _job(issuer, "alice")
    for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/hotfix", "GITHUB_SHA": "0" * 40,
                       "GITHUB_ACTOR": "alice", "GITHUB_REPOSITORY": "acme/web-service",
                       "GITHUB_RUN_ID": "7", **issuer.github_job_env()}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_TRIGGERING_ACTOR", raising=False)
    oidc = {"issuers": [{"name": "github", "issuer": issuer.issuer, "provider": "github", "audiences": ["ps019"],
                         "jwks": issuer.jwks()}],
            "rules": {"production": [{"issuer": "github", "repository": ["acme/web-service"],
                                      "ref": ["refs/heads/main"]}]}, "replayProtection": False}
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"ps019-settings": {"gate": {"trustedKeys": TRUSTED, "oidc": oidc},
                                                     "identity": {"lookup": "off"}, "evidence": {"store_url": url}}}))
    return {"url": url, "config": config}


def _store(world):
    from ps019.evidence import open_store

    return open_store(world["url"])


def by_policy(result, urn=None):
    out = {}
    for d in result.diagnostics:
        if urn is None or d.urn == urn:
            out.setdefault(d.policy_name, []).append(d)
    return out


def test_break_glass_end_to_end(resources, world, ps019_pack, pack_pool, monkeypatch, issuer):
    from ps019.evidence import load_signer

    root = resources[0].urn
    # 1. No grant: a direct production change is blocked on the root stack resource.
    before = run_pass(ps019_pack, resources, stack=STACK, dry_run=True, policy_pack_config=world["config"],
                      pool=pack_pool)
    assert any(d.mandatory for d in by_policy(before, root).get("PS019-GATE-004", []))

    # 2. alice opens a grant waiving PS019-IAM-001 only.
    with _store(world) as store:
        grant = open_grant(store, load_signer(), KEYS["alice"], VerifiedIdentity("alice", "ci-oidc", "CI OIDC ID token"),
                           STACK, reason="TLS cert expired", incident="INC-4711", ttl=timedelta(hours=1),
                           waive=["PS019-IAM-001"], gate_settings=GateSettings.model_validate({"trustedKeys": TRUSTED}))
    during = run_pass(ps019_pack, resources, stack=STACK, dry_run=True, policy_pack_config=world["config"],
                      pool=pack_pool)
    on_root = by_policy(during, root)
    assert not any(d.mandatory for d in on_root.get("PS019-GATE-001", []) + on_root.get("PS019-GATE-004", []))
    reported = on_root["PS019-GATE-050"]
    assert not reported[0].mandatory and f"change made under break-glass grant {grant.grant_id} by alice" in \
        reported[0].message
    for urn in (URN_A, URN_B):  # the waived control: advisory, naming the grant
        iam = by_policy(during, urn)["PS019-IAM-001"]
        assert all(not d.mandatory and f"overridden under grant {grant.grant_id}" in d.message for d in iam)
    # every other mandatory control still mandatory: the grant does not waive PS019-IAM-003, and an unwaived
    # high-severity finding still needs a security approver (escalation)
    still = {d.policy_name for d in during.diagnostics if d.mandatory and d.urn == URN_ADMIN}
    assert {"PS019-IAM-003", "PS019-GATE-005"} <= still
    # the overridden findings are accepted risks under the grant: they do not escalate
    assert not [d for d in during.diagnostics if d.urn in (URN_A, URN_B) and d.policy_name == "PS019-GATE-005"]

    # 3. The deployment record says emergency and names the verified grant.
    with _store(world) as store:
        records = [s.record for s in store.query(stack=STACK, kind="preview")]
    latest = max(records, key=lambda r: r.started_at)
    assert latest.break_glass is not None and latest.break_glass.ref_id == grant.grant_id
    assert latest.break_glass.verified and latest.change_class == "emergency"

    # 4. Somebody else cannot use alice's grant: not bob's job, and not a job that only says GITHUB_ACTOR=alice.
    _job(issuer, "bob")
    other = run_pass(ps019_pack, resources, stack=STACK, dry_run=True, policy_pack_config=world["config"],
                     pool=pack_pool)
    blocking = " | ".join(d.message for d in other.diagnostics if d.mandatory and d.urn == root)
    assert "issued to alice, not bob" in blocking
    assert all(d.mandatory for d in by_policy(other, URN_A)["PS019-IAM-001"])
    _job(issuer, "alice")
    for key in issuer.github_job_env():
        monkeypatch.delenv(key)
    claimed = run_pass(ps019_pack, resources, stack=STACK, dry_run=True, policy_pack_config=world["config"],
                       pool=pack_pool)
    assert any(d.mandatory for d in by_policy(claimed, root).get("PS019-GATE-004", []))


def test_exception_end_to_end(resources, world, ps019_pack, pack_pool):
    from ps019.evidence import load_signer

    with _store(world) as store:
        exc = add_exception(store, load_signer(), KEYS["dave"], control_id="PS019-IAM-001", resource=URN_A,
                            stack_ref=STACK, reason="vendor tool, replacement in SEC-812",
                            expires_at=datetime.now(timezone.utc) + timedelta(days=7), approved_by="dave@example.com",
                            gate_settings=GateSettings.model_validate({"trustedKeys": TRUSTED}))
    result = run_pass(ps019_pack, resources, stack=STACK, dry_run=True, policy_pack_config=world["config"],
                      pool=pack_pool)
    a = by_policy(result, URN_A)["PS019-IAM-001"]
    b = by_policy(result, URN_B)["PS019-IAM-001"]
    assert all(not d.mandatory and f"waived by exception {exc.exception_id}" in d.message for d in a)
    assert all(d.mandatory and "waived" not in d.message for d in b)


def test_unapproved_exception_does_nothing_and_the_run_says_why(resources, world, ps019_pack, pack_pool, tmp_path):
    from ps019.evidence import load_signer

    with _store(world) as store:
        exc = add_exception(store, load_signer(), KEYS["dave"], control_id="PS019-IAM-001", resource=URN_A,
                            stack_ref=STACK, reason="vendor tool", approved_by="dave@example.com",
                            expires_at=datetime.now(timezone.utc) + timedelta(days=7),
                            gate_settings=GateSettings.model_validate({"trustedKeys": TRUSTED}))
    # The platform team no longer trusts dave's key: his exception is reported (PS019-GATE-052) and waives nothing.
    untrusting = tmp_path / "untrusting.json"
    untrusting.write_text(json.dumps({"ps019-settings": {"gate": {"trustedKeys": TRUSTED[:1]},
                                                         "identity": {"lookup": "off"},
                                                         "evidence": {"store_url": world["url"]}}}))
    result = run_pass(ps019_pack, resources, stack=STACK, dry_run=True, policy_pack_config=untrusting,
                      pool=pack_pool)
    ignored = [d for d in result.diagnostics if d.policy_name == "PS019-GATE-052"]
    assert ignored and exc.exception_id in ignored[0].message and not ignored[0].mandatory
    assert all(d.mandatory for d in by_policy(result, URN_A)["PS019-IAM-001"])
