"""decide_gate: verified approvals pass; every way of faking, replaying or mis-binding an approval fails precisely."""

from __future__ import annotations

import hashlib

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import pytest

from ps019.gate import change_request as crm
from ps019.gate import signing
from ps019.gate.ci import CiRun
from ps019.gate.decision import (
    APPROVALS, APPROVED_PATH, CR_VALID, EMERGENCY, ESCALATION, RUNBOOK, SEPARATION, Deployer, GateInputs,
    decide_gate, escalation_violations,
)
from ps019.gate.settings import GateSettings, TrustedKey
from ps019.model import Severity

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STACK = "acme/web/prod"
COMMIT = "a" * 40
OTHER_COMMIT = "b" * 40
KEYS = {name: signing.generate_private_key() for name in ("alice", "bob", "sec", "carol", "mallory")}
ROLES = {"alice": ("approver",), "bob": ("approver",), "sec": ("security", "approver"), "carol": ("approver",)}


def ident(name: str) -> str:
    return f"{name}@example.com"


SETTINGS = GateSettings(
    trusted_keys=[TrustedKey(public_key=signing.public_key_text(KEYS[n]), identity=ident(n), roles=r)
                  for n, r in ROLES.items()],
    standard_runbooks=["RB-rotate-certs"],
    approved_path={"deploy_identity_patterns": ["arn:aws:sts::111111111111:assumed-role/ps019-deploy/*"]},
)
DEPLOYER = Deployer("arn:aws:sts::111111111111:assumed-role/ps019-deploy/gha-run-1", "sts")
CI = CiRun(provider="github", ref="refs/heads/main", commit=COMMIT, actor="dave", run_url="https://ci/1")


def body(**overrides) -> dict:
    doc = {
        "ticket": "CHG-1234", "change_class": "normal", "summary": "Raise ASG max to 6", "owner": "team-web",
        "author": ident("carol"), "artifact": {"git_commit": COMMIT}, "stacks": [STACK],
        "test_evidence": "https://ci/1", "rollback_plan": "https://wiki/rb", "monitoring_plan": "https://wiki/mon",
        "created_at": "2026-11-20T09:00:00Z", "expires_at": "2026-11-22T09:00:00Z",
    }
    doc.update(overrides)
    return doc


def approve(doc: dict, name: str, role: str = "approver", *, key: str | None = None, signed_at=NOW - timedelta(hours=1),
            expires_at=None, approver: str | None = None) -> dict:
    request = crm.ChangeRequest.model_validate({**doc, "approvals": []})
    approval = crm.sign_approval(request, KEYS[key or name], approver=approver or ident(name), role=role,
                                 signed_at=signed_at, expires_at=expires_at)
    return approval.model_dump(mode="json")


def cr_bytes(doc: dict, approvals: list[dict]) -> bytes:
    return json.dumps({**doc, "approvals": approvals}).encode()


def inputs(data: bytes | None, **overrides) -> GateInputs:
    source = crm.ChangeRequestSource("env PS019_CHANGE_REQUEST", "/tmp/cr.json", data=data) if data is not None else None
    base = GateInputs(stack_ref=STACK, tier="production", tier_source="pack pattern '*/prod'", now=NOW,
                      change_request=source, deployer=DEPLOYER, ci=CI, artifact_commit=COMMIT,
                      artifact_source="github CI commit")
    return replace(base, **overrides)


def author_signs(doc: dict) -> dict:
    """The author's own signature (role author): production asks for it by default."""
    return approve(doc, "carol", "author")


def good_approvals(doc=None) -> list[dict]:
    doc = doc or body()
    return [approve(doc, "alice"), approve(doc, "bob"), author_signs(doc)]


def messages(decision, control_id) -> str:
    return " | ".join(v.message for v in decision.violations[control_id])


def blocking(decision) -> dict:
    return {cid: [v.message for v in vs if not v.details.get("advisory")]
            for cid, vs in decision.violations.items() if any(not v.details.get("advisory") for v in vs)}


def test_valid_signed_approvals_pass():
    d = decide_gate(inputs(cr_bytes(body(), good_approvals())), SETTINGS)
    assert blocking(d) == {}
    assert not d.blocked and d.change_class == "normal"
    assert {a["approver"] for a in d.verified_approvals if a["role"] != "author"} == {ident("alice"), ident("bob")}
    ev = d.evidence()
    assert ev["presented"]["change_request"]["author_verified"]["identity"] == ident("carol")
    assert ev["decision"] == "allowed" and ev["presented"]["change_request"]["ticket"] == "CHG-1234"
    assert all(a["key_id"].startswith("ed25519:") for a in ev["verified_approvals"])


def test_decision_is_identical_for_preview_and_update():
    data = cr_bytes(body(), good_approvals()[:1])
    preview, update = decide_gate(inputs(data, dry_run=True), SETTINGS), decide_gate(inputs(data), SETTINGS)
    assert preview.violations == update.violations and preview.blocked == update.blocked


def test_yaml_change_request_is_accepted():
    import yaml

    doc = {**body(), "approvals": good_approvals()}
    d = decide_gate(inputs(yaml.safe_dump(doc).encode()), SETTINGS)
    assert not d.blocked, blocking(d)


def test_no_change_request_is_mandatory_violation():
    d = decide_gate(inputs(None), SETTINGS)
    assert d.blocked and "no change request presented for acme/web/prod" in messages(d, CR_VALID)
    assert "PS019_CHANGE_REQUEST" in messages(d, CR_VALID)


def test_unsigned_approval_fails():
    approvals = good_approvals()
    approvals[1]["signature"] = ""
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "approvals[1].signature: string should have at least 1 character" in messages(d, CR_VALID)
    del approvals[1]["signature"]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert "approvals[1].signature: field required" in messages(d, CR_VALID)


def test_untrusted_key_fails():
    approvals = [approve(body(), "alice"), approve(body(), "mallory")]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked
    assert "approvals[1] mallory@example.com (approver): signed by key ed25519:" in messages(d, APPROVALS)
    assert "not in gate.trusted_keys (untrusted key)" in messages(d, APPROVALS)


def test_untrusted_key_claiming_a_trusted_identity_fails():
    approvals = [approve(body(), "alice"), approve(body(), "bob", key="mallory")]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "untrusted key" in messages(d, APPROVALS)


def test_key_used_for_another_identity_fails():
    approvals = [approve(body(), "alice"), approve(body(), "bob", key="alice")]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "belongs to alice@example.com, not bob@example.com" in messages(d, APPROVALS)


def test_signature_over_different_content_fails():
    approvals = good_approvals()
    tampered = body(summary="Raise ASG max to 60 and open port 22")
    d = decide_gate(inputs(cr_bytes(tampered, approvals)), SETTINGS)
    assert d.blocked
    assert "signature does not verify over this change request" in messages(d, APPROVALS)


def test_approval_for_another_stack_fails():
    doc = body(stacks=["acme/web/staging"])
    d = decide_gate(inputs(cr_bytes(doc, good_approvals(doc))), SETTINGS)
    assert d.blocked
    assert "covers stacks ['acme/web/staging'], not acme/web/prod" in messages(d, CR_VALID)
    assert "not for this run" in messages(d, APPROVALS)


def test_editing_the_stack_list_after_approval_fails():
    approvals = good_approvals(body(stacks=["acme/web/staging"]))
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "signature does not verify" in messages(d, APPROVALS)


def test_approval_for_another_commit_fails():
    d = decide_gate(inputs(cr_bytes(body(), good_approvals()), artifact_commit=OTHER_COMMIT), SETTINGS)
    assert d.blocked
    assert f"it approves commit {COMMIT}, but this run deploys {OTHER_COMMIT}" in messages(d, CR_VALID)


def test_replay_of_old_approvals_for_a_new_commit_fails():
    old = good_approvals(body())
    new_doc = body(artifact={"git_commit": OTHER_COMMIT})
    d = decide_gate(inputs(cr_bytes(new_doc, old), artifact_commit=OTHER_COMMIT), SETTINGS)
    assert d.blocked and len(d.rejected_approvals) == 3  # alice, bob and the author's own signature
    assert "signature does not verify over this change request" in messages(d, APPROVALS)


def test_unknown_artifact_commit_blocks():
    d = decide_gate(inputs(cr_bytes(body(), good_approvals()), artifact_commit=None), SETTINGS)
    assert d.blocked and "the commit this run deploys is unknown" in messages(d, CR_VALID)


def test_plan_digest_binding():
    plan = b'{"manifest": {"time": "2026-11-20T11:00:00Z"}, "resourcePlans": {}}'
    digest = "sha256:" + hashlib.sha256(plan).hexdigest()
    doc = body(artifact={"git_commit": COMMIT, "plan_digest": digest})
    data = cr_bytes(doc, good_approvals(doc))
    bound = decide_gate(inputs(data, plan_digest=digest, plan_data=plan), SETTINGS)
    assert not bound.blocked and bound.bound_plan is not None
    assert bound.evidence()["presented"]["plan"] == {"digest": digest, "resources": 0, "steps": {}}
    d = decide_gate(inputs(data, plan_digest="sha256:" + "d" * 64), SETTINGS)
    assert d.blocked and "but this run's plan is sha256:dddd" in messages(d, CR_VALID)
    d = decide_gate(inputs(data), SETTINGS)
    assert d.blocked and "no plan file was given (set PS019_PLAN_FILE" in messages(d, CR_VALID)


def test_expired_approval_fails():
    approvals = [approve(body(), "alice"), approve(body(), "bob", expires_at=NOW - timedelta(minutes=1))]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "approval expired at 2026-11-20T11:59:00Z" in messages(d, APPROVALS)


def test_approval_older_than_max_age_fails():
    approvals = [approve(body(), "alice"), approve(body(), "bob", signed_at=NOW - timedelta(days=4))]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "older than the maximum approval age" in messages(d, APPROVALS)


def test_future_dated_approval_fails():
    approvals = [approve(body(), "alice"), approve(body(), "bob", signed_at=NOW + timedelta(hours=2))]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "is in the future" in messages(d, APPROVALS)


def test_expired_change_request_fails():
    doc = body(expires_at="2026-11-20T11:00:00Z")
    d = decide_gate(inputs(cr_bytes(doc, good_approvals(doc))), SETTINGS)
    assert d.blocked and "change request CHG-1234: expired at 2026-11-20T11:00:00Z" in messages(d, CR_VALID)


def test_approver_equal_to_author_does_not_count():
    doc = body(author=ident("alice"))
    d = decide_gate(inputs(cr_bytes(doc, good_approvals(doc))), SETTINGS)
    assert d.blocked
    assert "approval by alice@example.com (approver) does not count: the approver is the change author" in messages(
        d, SEPARATION)
    assert "2 valid approval(s) required" in messages(d, APPROVALS)


def test_approver_equal_to_deployer_does_not_count():
    d = decide_gate(inputs(cr_bytes(body(), good_approvals()), deployer=Deployer(
        "arn:aws:sts::111111111111:assumed-role/ps019-deploy/bob@example.com", "sts")), SETTINGS)
    assert d.blocked and "the approver is the deployer" in messages(d, SEPARATION)


def test_identity_aliases_link_a_ci_login_to_an_approver():
    settings = SETTINGS.model_copy(update={"identity_aliases": {ident("bob"): ["bobgh"]},
                                           "approved_path": SETTINGS.approved_path.model_copy(
                                               update={"deploy_identity_patterns": []})})
    d = decide_gate(inputs(cr_bytes(body(), good_approvals()), deployer=Deployer("BobGH", "ci")), settings)
    assert d.blocked and "the approver is the deployer (BobGH)" in messages(d, SEPARATION)


def test_too_few_approvers_fails():
    d = decide_gate(inputs(cr_bytes(body(), good_approvals()[:1])), SETTINGS)
    assert d.blocked
    assert "2 valid approval(s) required for a normal change in production, 1 verified (alice@example.com)" in \
        messages(d, APPROVALS)


def test_same_approver_twice_counts_once():
    approvals = [approve(body(), "alice"), approve(body(), "alice", signed_at=NOW - timedelta(minutes=5))]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "duplicate approval" in messages(d, APPROVALS)


def test_missing_required_role_fails():
    settings = SETTINGS.model_copy(update={"rules": GateSettings.model_validate(
        {"rules": {"production": {"normal": {"minApprovals": 2, "requiredRoles": ["approver", "security"]}}}}).rules})
    d = decide_gate(inputs(cr_bytes(body(), good_approvals())), settings)
    assert d.blocked and "missing required role(s): security" in messages(d, APPROVALS)
    approvals = good_approvals() + [approve(body(), "sec", "security")]
    assert not decide_gate(inputs(cr_bytes(body(), approvals)), settings).blocked


def test_role_not_granted_to_key_fails():
    approvals = [approve(body(), "alice"), approve(body(), "bob", "security")]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.blocked and "may sign as ['approver'], not 'security'" in messages(d, APPROVALS)


def test_malformed_file_fails_precisely():
    d = decide_gate(inputs(b'{"ticket": "CHG-1", '), SETTINGS)
    assert d.blocked and "is invalid: not valid JSON" in messages(d, CR_VALID)
    doc = body()
    del doc["artifact"]
    d = decide_gate(inputs(cr_bytes(doc, [])), SETTINGS)
    assert "artifact: field required" in messages(d, CR_VALID)


def test_missing_file_fails_precisely(tmp_path):
    source = crm.load_change_request({"PS019_CHANGE_REQUEST": str(tmp_path / "nope.json")}, {})
    d = decide_gate(replace(inputs(None), change_request=source), SETTINGS)
    assert d.blocked and f"{tmp_path / 'nope.json'} (from env PS019_CHANGE_REQUEST): no such file" in messages(
        d, CR_VALID)


def test_bad_ticket_and_missing_required_fields():
    doc = body(ticket="fix stuff", rollback_plan=None)
    d = decide_gate(inputs(cr_bytes(doc, good_approvals(doc))), SETTINGS)
    text = messages(d, CR_VALID)
    assert "does not match the required pattern" in text and "rollback_plan: required for a normal change" in text


def test_direct_change_is_blocked():
    data = cr_bytes(body(), good_approvals())
    d = decide_gate(inputs(data, ci=None, deployer=Deployer("dave", "local-user")), SETTINGS)
    assert d.blocked and "direct change to acme/web/prod" in messages(d, APPROVED_PATH)
    assert "not running in CI" in messages(d, APPROVED_PATH)
    d = decide_gate(inputs(data, ci=replace(CI, ref="refs/heads/feature")), SETTINGS)
    assert "ref refs/heads/feature is not a protected ref" in messages(d, APPROVED_PATH)
    d = decide_gate(inputs(data, deployer=Deployer("arn:aws:sts::111111111111:assumed-role/Admin/dave", "sts")),
                    SETTINGS)
    assert "does not match the approved deploy identities" in messages(d, APPROVED_PATH)


@dataclass
class FakeGrant:
    grant_id: str | None = "bg-1"
    valid: bool = True
    problems: tuple = ()
    operator: str = "dave@example.com"
    waived_controls: tuple = ()
    expires_at: datetime | None = None
    notices: tuple = ()


def test_direct_change_under_valid_grant_is_emergency():
    d = decide_gate(inputs(None, ci=None, deployer=Deployer("dave@example.com", "sts"), break_glass=FakeGrant()),
                    SETTINGS)
    assert not d.blocked, blocking(d)
    assert d.change_class == "emergency" and d.break_glass_grant == "bg-1"


def test_direct_change_under_invalid_grant_is_blocked():
    grant = FakeGrant(valid=False, problems=("grant bg-1 expired at 2026-11-20T10:00:00Z",))
    d = decide_gate(inputs(None, ci=None, deployer=Deployer("dave", "sts"), break_glass=grant), SETTINGS)
    assert d.blocked and "grant bg-1 expired" in messages(d, APPROVED_PATH)


def test_emergency_class_without_grant_is_blocked():
    doc = body(change_class="emergency")
    d = decide_gate(inputs(cr_bytes(doc, [])), SETTINGS)
    assert d.blocked and "declares an emergency change but there is no break-glass grant" in messages(d, EMERGENCY)


def test_standard_change_needs_a_configured_runbook():
    doc = body(change_class="standard", runbook_id="RB-unknown")
    d = decide_gate(inputs(cr_bytes(doc, [approve(doc, "alice")])), SETTINGS)
    assert d.blocked and "runbook 'RB-unknown'" in messages(d, RUNBOOK)
    doc = body(change_class="standard", runbook_id="RB-rotate-certs")
    assert not decide_gate(inputs(cr_bytes(doc, [approve(doc, "alice"), author_signs(doc)])), SETTINGS).blocked
    doc = body(change_class="standard")
    assert "has no runbook_id" in messages(decide_gate(inputs(cr_bytes(doc, [])), SETTINGS), RUNBOOK)


def test_unknown_tier_uses_production_rules_and_says_so():
    d = decide_gate(inputs(None, stack_ref="acme/web/blue", tier="unknown",
                           tier_source="no pack pattern matches 'acme/web/blue'"), SETTINGS)
    assert d.blocked and d.rules_tier == "production"
    assert "stack tier unknown" in messages(d, CR_VALID) and "the safest applicable rule" in messages(d, CR_VALID)


def test_non_production_is_advisory_by_default():
    d = decide_gate(inputs(None, stack_ref="acme/web/staging", tier="staging", ci=None), SETTINGS)
    assert not d.blocked and d.violations[CR_VALID] and all(v.details["advisory"] for v in d.violations[CR_VALID])


def test_escalation_requires_security_approval():
    d = decide_gate(inputs(cr_bytes(body(), good_approvals())), SETTINGS)
    assert escalation_violations(d, [Severity.LOW, Severity.MEDIUM], SETTINGS) == []
    found = escalation_violations(d, ["medium", Severity.CRITICAL], SETTINGS)
    assert len(found) == 1 and "1 finding(s) at or above high severity (worst: critical)" in found[0].message
    approvals = good_approvals() + [approve(body(), "sec", "security")]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    assert d.security_approved and escalation_violations(d, [Severity.CRITICAL], SETTINGS) == []
    assert ESCALATION in d.violations


def test_evidence_never_contains_signatures_or_keys():
    d = decide_gate(inputs(cr_bytes(body(), good_approvals())), SETTINGS)
    text = json.dumps(d.evidence())
    assert all(a["signature"] not in text for a in good_approvals())


def test_evidence_approvals_fit_the_evidence_record():
    from ps019.evidence.record import VerifiedReference

    approvals = [approve(body(), "alice"), approve(body(), "mallory")]
    d = decide_gate(inputs(cr_bytes(body(), approvals)), SETTINGS)
    refs = [VerifiedReference.model_validate(r) for r in d.evidence()["approvals"]]
    assert [r.verified for r in refs] == [True, False] and "untrusted key" in refs[1].failures[0]
    assert d.evidence()["change_request"] == "CHG-1234" and d.evidence()["rollback_plan"] == "https://wiki/rb"


def test_one_key_under_two_spellings_counts_as_one_person():
    settings = SETTINGS.model_copy(update={"identity_aliases": {ident("alice"): ["asmith"]}})
    doc = body()
    for second in ("asmith", "arn:aws:sts::999999999999:assumed-role/any/alice@example.com"):
        d = decide_gate(inputs(cr_bytes(doc, [approve(doc, "alice"), approve(doc, "alice", approver=second)])),
                        settings)
        assert d.blocked and "1 verified" in messages(d, APPROVALS)
        assert "one person counts once" in messages(d, APPROVALS)


@pytest.mark.parametrize("raw", [b'{"ticket": "CHG-1", "ticket": "CHG-2"}', b"ticket: CHG-1\nticket: CHG-2\n",
                                 b'{"artifact": {"git_commit": "a", "git_commit": "b"}}'])
def test_duplicate_keys_are_refused(raw):
    d = decide_gate(inputs(raw), SETTINGS)
    assert d.blocked and "duplicate key" in messages(d, CR_VALID)


def test_grant_does_not_carry_a_deployer_named_only_by_the_os_user():
    d = decide_gate(inputs(None, ci=None, deployer=Deployer("dave@example.com", "local-user"),
                           break_glass=FakeGrant()), SETTINGS)
    assert d.blocked and d.change_class != "emergency"
    assert "was established by local-user, and a grant needs one of ['oidc', 'sts']" in messages(d, APPROVED_PATH)
    strict = SETTINGS.model_copy(update={"break_glass_verified_by": ["sts"]})
    d = decide_gate(inputs(None, ci=None, deployer=Deployer("dave@example.com", "ci"), break_glass=FakeGrant()), strict)
    assert d.blocked
