"""The gate through the engine stand-in and the bundled pack, on the example production stack (examples/web-service).

What a user relies on: the gate decides on the root ``pulumi:pulumi:Stack`` resource, so in update mode a blocked
``pulumi up`` analyzes nothing else (the engine bails before any provider is asked to change anything)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ps019.engine import StackRef, load_stack_export, run_pass
from ps019.gate import change_request as crm
from ps019.gate import signing

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "examples" / "web-service" / "stack-export.prod.json"
STACK = "acme/web-service/prod"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
KEYS = {n: signing.generate_private_key() for n in ("alice", "bob", "carol")}
GATE_IDS = {f"PS019-GATE-00{i}" for i in range(1, 8)}


@pytest.fixture(scope="module")
def export():
    return load_stack_export(EXPORT, StackRef.parse(STACK))


@pytest.fixture(scope="module")
def issuer():
    """A throwaway OIDC issuer on loopback playing GitHub Actions' token service."""
    from ps019.oidc.local_issuer import LocalIssuer, github_claims

    with LocalIssuer() as local:
        local.job_claims = github_claims(repository="acme/web-service", ref="refs/heads/main", sha=COMMIT,
                                         actor="deploy-bot", run_id="42")
        yield local


@pytest.fixture
def pack_config(pinned_store_config, issuer):
    trusted = [{"publicKey": signing.public_key_text(k), "identity": f"{n}@example.com",
                "roles": [] if n == "carol" else ["approver"]} for n, k in KEYS.items()]  # carol: the author
    oidc = {"issuers": [{"name": "github", "issuer": issuer.issuer, "provider": "github", "audiences": ["ps019"],
                         "jwks": issuer.jwks()}],
            "rules": {"production": [{"issuer": "github", "repository": ["acme/web-service"],
                                      "ref": ["refs/heads/main"], "refProtected": True}]},
            "replayProtection": False}  # each test's pack reuses the run; replay has its own tests
    return pinned_store_config({"gate": {"trustedKeys": trusted, "oidc": oidc}, "identity": {"lookup": "off"}})


@pytest.fixture
def ci_env(monkeypatch, issuer):
    """The approved path: a GitHub Actions job on a protected branch, deploying COMMIT, with `id-token: write` (the
    pack process exchanges ACTIONS_ID_TOKEN_REQUEST_TOKEN for an ID token at the local issuer)."""
    for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": COMMIT,
                       "GITHUB_ACTOR": "deploy-bot", "GITHUB_REPOSITORY": "acme/web-service",
                       "GITHUB_RUN_ID": "42", **issuer.github_job_env()}.items():
        monkeypatch.setenv(key, value)


def write_request(tmp_path: Path, *, stacks=(STACK,), commit=COMMIT, approvers=("alice", "bob")) -> Path:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    doc = {"ticket": "CHG-4242", "change_class": "normal", "summary": "Example change", "owner": "team-web",
           "author": "carol@example.com", "artifact": {"git_commit": commit}, "stacks": list(stacks),
           "test_evidence": "https://ci/42", "rollback_plan": "https://wiki/rollback",
           "monitoring_plan": "https://wiki/monitoring", "created_at": (now - timedelta(hours=1)).isoformat(),
           "expires_at": (now + timedelta(days=1)).isoformat()}
    request = crm.ChangeRequest.model_validate(doc)
    approvals = [crm.sign_approval(request, KEYS[n], approver=f"{n}@example.com", role="approver",
                                   signed_at=now - timedelta(minutes=10)) for n in approvers]
    approvals.append(crm.sign_approval(request, KEYS["carol"], approver="carol@example.com", role="author",
                                       signed_at=now - timedelta(minutes=20)))
    path = tmp_path / "change.json"
    path.write_text(request.model_copy(update={"approvals": approvals}).model_dump_json())
    return path


def gate_diagnostics(result):
    return [d for d in result.diagnostics if d.policy_name in GATE_IDS]


def test_no_change_request_blocks_on_the_root_stack_and_nothing_else_is_analyzed(
        export, ps019_pack, pack_pool, pack_config, ci_env):
    result = run_pass(ps019_pack, export, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    stack_urn = export.resources[0].urn
    assert export.resources[0].type == "pulumi:pulumi:Stack"
    blocking = [d for d in gate_diagnostics(result) if d.mandatory]
    assert blocking and {d.urn for d in blocking} == {stack_urn}
    assert any("no change request presented for acme/web-service/prod" in d.message for d in blocking)
    assert result.blocked_at == stack_urn
    assert result.analyzed_urns == [stack_urn]  # the update stopped at the first resource
    assert not result.stack_analyzed


def test_preview_without_change_request_reports_the_same_gate_violation(
        export, ps019_pack, pack_pool, pack_config, ci_env):
    result = run_pass(ps019_pack, export, stack=STACK, dry_run=True, policy_pack_config=pack_config, pool=pack_pool)
    gate = [d for d in gate_diagnostics(result) if d.mandatory]
    assert any(d.policy_name == "PS019-GATE-001" for d in gate)
    assert len(result.analyzed_urns) == len(export.resources)  # a preview analyzes everything and then fails


def test_valid_signed_approvals_pass_the_gate(export, ps019_pack, pack_pool, pack_config, ci_env, tmp_path,
                                              monkeypatch):
    monkeypatch.setenv("PS019_CHANGE_REQUEST", str(write_request(tmp_path)))
    result = run_pass(ps019_pack, export, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    assert [d.message for d in gate_diagnostics(result) if d.mandatory] == []
    assert result.blocked_at != export.resources[0].urn and len(result.analyzed_urns) > 1


def test_approvals_for_another_commit_block_through_the_engine(export, ps019_pack, pack_pool, pack_config, ci_env,
                                                               tmp_path, monkeypatch):
    monkeypatch.setenv("PS019_CHANGE_REQUEST", str(write_request(tmp_path, commit="f" * 40)))
    result = run_pass(ps019_pack, export, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    messages = " | ".join(d.message for d in gate_diagnostics(result) if d.mandatory)
    assert f"it approves commit {'f' * 40}, but this run deploys {COMMIT}" in messages
    assert result.analyzed_urns == [export.resources[0].urn]


def test_missing_change_request_file_blocks_precisely(export, ps019_pack, pack_pool, pack_config, ci_env, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv("PS019_CHANGE_REQUEST", str(tmp_path / "missing.json"))
    result = run_pass(ps019_pack, export, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    assert any("missing.json (from env PS019_CHANGE_REQUEST): no such file" in d.message
               for d in gate_diagnostics(result) if d.mandatory)
