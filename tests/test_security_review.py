"""Independent adversarial review of ps019's trust code (docs/security-review.md has the findings).

Attackers modelled: a developer who controls the Pulumi program, the stack config (PULUMI_CONFIG), stack tags and the
environment of their own laptop, but not the platform team's ``ps019-settings``, not the trusted private keys and not
the evidence store except through ps019's append path; an insider holding ONE trusted key; an operator reusing or
forging a grant.

Tests that pass pin a defence a user relies on. Tests marked ``xfail(strict=True, reason="SECURITY: ...")`` are open
findings: they assert the secure behaviour, fail today, and will turn into an XPASS failure (forcing the marker's
removal) once the code is fixed.
"""

from __future__ import annotations

import hashlib

import base64
import dataclasses
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from ps019.gate import change_request as crm
from ps019.gate import signing
from ps019.gate.breakglass import (
    BreakGlassClose,
    BreakGlassGrant,
    BreakGlassSettings,
    check_break_glass,
    close_record,
    grant_record,
    sign_document,
    VerifiedIdentity,
)
from ps019.gate.ci import CiRun
from ps019.gate.decision import (
    APPROVALS, CR_VALID, SEPARATION, Deployer, GateInputs, decide_gate,
)
from ps019.gate.exceptions import ControlException, active_exceptions, exception_record
from ps019.gate.settings import GateSettings, TrustedKey, classify_environment
from ps019.gate.waivers import Waiver, apply_waivers, waivers_from_exceptions
from ps019.model import Diagnostic, Level, Severity

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STACK = "acme/web/prod"
COMMIT = "a" * 40
OLD_COMMIT = "b" * 40
PLAN_DATA = b'{"manifest": {"time": "2026-11-20T11:00:00Z"}, "resourcePlans": {}}'  # a saved plan (no resources)
PLAN = "sha256:" + hashlib.sha256(PLAN_DATA).hexdigest()
KEYS = {n: signing.generate_private_key() for n in ("alice", "bob", "sec", "carol", "mallory", "op")}
ROLES = {"alice": ("approver",), "bob": ("approver",), "sec": ("security", "approver"), "carol": ("approver",)}
DEPLOY_ARN = "arn:aws:sts::111111111111:assumed-role/ps019-deploy/gha-run-1"


def ident(name: str) -> str:
    return f"{name}@example.com"


def trusted(name: str, roles=None, identity=None) -> TrustedKey:
    return TrustedKey(public_key=signing.public_key_text(KEYS[name]), identity=identity or ident(name),
                      roles=roles or ROLES[name])


SETTINGS = GateSettings(
    trusted_keys=[trusted(n) for n in ROLES],
    approved_path={"deploy_identity_patterns": ["arn:aws:sts::111111111111:assumed-role/ps019-deploy/*"]},
)
DEPLOYER = Deployer(DEPLOY_ARN, "sts")
CI = CiRun(provider="github", ref="refs/heads/main", commit=COMMIT, actor="ci-bot", run_url="https://ci/1")


def body(**over) -> dict:
    doc = {"ticket": "CHG-1234", "change_class": "normal", "summary": "Raise ASG max to 6", "owner": "team-web",
           "author": ident("carol"), "artifact": {"git_commit": COMMIT, "plan_digest": PLAN}, "stacks": [STACK],
           "test_evidence": "https://ci/1", "rollback_plan": "https://wiki/rb", "monitoring_plan": "https://wiki/mon",
           "created_at": "2026-11-20T09:00:00Z", "expires_at": "2026-11-22T09:00:00Z"}
    doc.update(over)
    return doc


def approve(doc: dict, name: str, role: str = "approver", *, approver: str | None = None,
            signed_at: datetime = NOW - timedelta(hours=1), expires_at: datetime | None = None) -> dict:
    request = crm.ChangeRequest.model_validate({**doc, "approvals": []})
    return crm.sign_approval(request, KEYS[name], approver=approver or ident(name), role=role, signed_at=signed_at,
                             expires_at=expires_at).model_dump(mode="json")


def gate(doc: dict, approvals: list[dict], settings: GateSettings = SETTINGS, raw: bytes | None = None, **over):
    data = raw if raw is not None else json.dumps({**doc, "approvals": approvals}).encode()
    source = crm.ChangeRequestSource("env PS019_CHANGE_REQUEST", "/tmp/cr.json", data=data)
    base = GateInputs(stack_ref=STACK, tier="production", tier_source="pack pattern '*/prod'", now=NOW,
                      change_request=source, deployer=DEPLOYER, ci=CI, artifact_commit=COMMIT,
                      artifact_source="github CI commit", plan_digest=PLAN, plan_data=PLAN_DATA)
    return decide_gate(dataclasses.replace(base, **over), settings)


def text(decision, control_id: str) -> str:
    return " | ".join(v.message for v in decision.violations[control_id])


def rejected_reasons(decision) -> str:
    return " | ".join(a["reason"] for a in decision.rejected_approvals)


def test_baseline_two_independent_approvals_pass():
    """The honest path the rest of this file attacks: two trusted approvers, neither author nor deployer, and the
    author's own signature (role author)."""
    doc = body()
    decision = gate(doc, [approve(doc, "alice"), approve(doc, "bob"), approve(doc, "carol", "author")])
    assert decision.allowed, decision.violations


# --- approvals: what the signature covers ----------------------------------------------------------------------------

BODY_EDITS = {
    "stacks": {"stacks": [STACK, "acme/web/prod-eu"]},
    "git_commit": {"artifact": {"git_commit": OLD_COMMIT, "plan_digest": PLAN}},
    "plan_digest": {"artifact": {"git_commit": COMMIT, "plan_digest": "sha256:" + "d" * 64}},
    "plan_digest_dropped": {"artifact": {"git_commit": COMMIT}},
    "change_class": {"change_class": "standard"},
    "expires_at": {"expires_at": "2026-12-03T09:00:00Z"},
    "ticket": {"ticket": "CHG-9999"},
    "author": {"author": ident("dave")},
    "summary": {"summary": "Raise ASG max to 6 and open 0.0.0.0/0"},
    "rollback_plan": {"rollback_plan": None},
}


@pytest.mark.parametrize("edit", sorted(BODY_EDITS))
def test_change_request_edited_after_approval_invalidates_every_approval(edit):
    doc = body()
    approvals = [approve(doc, "alice"), approve(doc, "bob")]
    edited = {**doc, **BODY_EDITS[edit]}
    decision = gate(edited, approvals, plan_digest=edited["artifact"].get("plan_digest") or PLAN,
                    artifact_commit=edited["artifact"]["git_commit"])
    assert decision.blocked
    assert not decision.verified_approvals
    assert "signature does not verify" in rejected_reasons(decision)


APPROVAL_EDITS = {
    "role": {"role": "security"},  # sec's key may sign both roles: only the signature stops the upgrade
    "signed_at": {"signed_at": "2026-11-20T11:30:00Z"},
    "expires_at_extended": {"expires_at": "2027-01-01T00:00:00Z"},
}


@pytest.mark.parametrize("edit", sorted(APPROVAL_EDITS))
def test_approval_fields_are_covered_by_its_signature(edit):
    doc = body()
    approval = {**approve(doc, "sec", expires_at=NOW + timedelta(hours=2)), **APPROVAL_EDITS[edit]}
    decision = gate(doc, [approval, approve(doc, "alice")])
    assert decision.blocked and "signature does not verify" in rejected_reasons(decision)


def test_approval_replayed_from_another_change_request_does_not_verify():
    original = body(ticket="CHG-1000", summary="harmless change")
    target = body(ticket="CHG-2000", summary="dangerous change")  # same stack, same commit
    stolen = [approve(original, "alice"), approve(original, "bob")]
    decision = gate(target, stolen)
    assert decision.blocked and len(decision.rejected_approvals) == 2
    assert "signature does not verify" in rejected_reasons(decision)


def test_valid_change_request_for_another_stack_is_not_accepted_here():
    doc = body(stacks=["acme/web/staging"])
    decision = gate(doc, [approve(doc, "alice"), approve(doc, "bob")])
    assert decision.blocked and "not acme/web/prod" in text(decision, CR_VALID)
    assert not decision.verified_approvals


def test_valid_change_request_for_an_older_commit_is_not_accepted_for_a_newer_one():
    doc = body(artifact={"git_commit": OLD_COMMIT})
    decision = gate(doc, [approve(doc, "alice"), approve(doc, "bob")])  # this run deploys COMMIT
    assert decision.blocked and f"it approves commit {OLD_COMMIT}" in text(decision, CR_VALID)


def test_plan_bound_approval_needs_the_same_plan_file():
    doc = body()
    approvals = [approve(doc, "alice"), approve(doc, "bob")]
    assert gate(doc, approvals, plan_digest=None).blocked  # plan file not presented
    assert gate(doc, approvals, plan_digest="sha256:" + "e" * 64).blocked  # another plan


def test_role_claim_outside_the_keys_roles_is_rejected():
    doc = body()
    decision = gate(doc, [approve(doc, "alice", role="security"), approve(doc, "bob")])
    assert "may sign as ['approver'], not 'security'" in rejected_reasons(decision)
    assert not decision.security_approved


def test_key_must_belong_to_the_named_approver():
    doc = body()
    # bob signs with his own (trusted) key but writes alice's name into the approval
    decision = gate(doc, [approve(doc, "bob", approver=ident("alice")), approve(doc, "bob")])
    assert decision.blocked and "belongs to bob@example.com, not alice@example.com" in rejected_reasons(decision)


def test_untrusted_key_claiming_a_trusted_key_id_does_not_verify():
    doc = body()
    forged = approve(doc, "mallory", approver=ident("alice"))
    forged["key_id"] = signing.key_id(KEYS["alice"])  # point at alice's trusted key
    decision = gate(doc, [forged, approve(doc, "bob")])
    assert decision.blocked and "signature does not verify" in rejected_reasons(decision)


def test_signature_for_one_document_kind_never_verifies_as_another():
    doc = {"stack": STACK, "expires_at": "2026-11-20T13:00:00Z"}
    sig = signing.sign(doc, KEYS["alice"], purpose=signing.PURPOSE_APPROVAL)
    keys = [trusted("alice")]
    assert signing.verify(doc, sig.value, sig.key_id, keys, purpose=signing.PURPOSE_APPROVAL).ok
    for purpose in (signing.PURPOSE_BREAK_GLASS, signing.PURPOSE_EXCEPTION):
        assert not signing.verify(doc, sig.value, sig.key_id, keys, purpose=purpose).ok


def test_signature_encoding_tricks_are_rejected():
    doc = {"a": 1}
    sig = signing.sign(doc, KEYS["alice"], purpose="p")
    keys = [trusted("alice")]
    raw = base64.b64decode(sig.value)
    for bad in (sig.value + "\n", base64.urlsafe_b64encode(raw).decode() + "==", base64.b64encode(raw + b"\0").decode(),
                base64.b64encode(raw[:63]).decode(), ""):
        if bad == sig.value:
            continue
        result = signing.verify(doc, bad, sig.key_id, keys, purpose="p")
        assert not result.ok or base64.b64decode(bad, validate=True) == raw


# --- N-of-M and separation of duties -----------------------------------------------------------------------------------


def test_one_key_counts_once_whatever_case_or_whitespace_the_name_uses():
    doc = body()
    spelled = [approve(doc, "alice", approver=name) for name in ("alice@example.com", "ALICE@Example.com",
                                                                  "  alice@example.com  ")]
    decision = gate(doc, spelled)
    assert decision.blocked and "2 valid approval(s) required" in text(decision, APPROVALS)


def test_one_key_cannot_meet_two_approvals_via_an_arn_session_name():
    settings = GateSettings(trusted_keys=[trusted("alice", identity="alice"), trusted("bob", identity="bob")],
                            approved_path=SETTINGS.approved_path)
    doc = body(author="carol")
    one_person = [approve(doc, "alice", approver="alice"),
                  approve(doc, "alice", approver="arn:aws:sts::999999999999:assumed-role/anything/alice")]
    decision = gate(doc, one_person, settings=settings)
    assert decision.blocked, "one key satisfied a two-person rule"


def test_one_key_cannot_meet_two_approvals_via_identity_aliases():
    settings = SETTINGS.model_copy(update={"identity_aliases": {ident("alice"): ["asmith", "alice-gh"]}})
    doc = body()
    one_person = [approve(doc, "alice"), approve(doc, "alice", approver="asmith")]
    decision = gate(doc, one_person, settings=settings)
    assert decision.blocked, "one key satisfied a two-person rule"


def test_author_cannot_approve_own_change_with_case_and_whitespace_tricks():
    doc = body(author="  Carol@EXAMPLE.com ")
    decision = gate(doc, [approve(doc, "carol", approver="CAROL@example.com"), approve(doc, "bob")])
    assert decision.blocked
    assert "is the change author" in text(decision, SEPARATION)


def test_deployer_cannot_approve_via_an_sso_session_name():
    settings = GateSettings(trusted_keys=[trusted("alice", identity="alice"), trusted("bob")],
                            approved_path={"deploy_identity_patterns": ["arn:aws:sts::111111111111:assumed-role/*"]})
    doc = body()
    decision = gate(doc, [approve(doc, "alice", approver="alice"), approve(doc, "bob")], settings=settings,
                    deployer=Deployer("arn:aws:sts::111111111111:assumed-role/admin/Alice", "sts"))
    assert decision.blocked and "is the deployer" in text(decision, SEPARATION)


def test_lookalike_unicode_identity_does_not_match_the_key():
    doc = body()
    cyrillic_a = "\u0430lice@example.com"  # Cyrillic a
    decision = gate(doc, [approve(doc, "alice", approver=cyrillic_a), approve(doc, "bob")])
    assert decision.blocked and "belongs to alice@example.com" in rejected_reasons(decision)


def test_unicode_normalisation_is_not_applied_behind_the_signers_back():
    """The approver signs the exact code points; an NFD rewrite of the same visible text is a different document."""
    doc = body(summary="Caf\u00e9 rollout")
    approvals = [approve(doc, "alice"), approve(doc, "bob")]
    decision = gate({**doc, "summary": "Cafe\u0301 rollout"}, approvals)
    assert decision.blocked and "signature does not verify" in rejected_reasons(decision)


# --- time --------------------------------------------------------------------------------------------------------------


def test_naive_timestamps_are_refused():
    doc = body(expires_at="2026-11-22T09:00:00")
    request, problems = crm.parse_change_request(json.dumps(doc).encode())
    assert request is None and any("expires_at" in p for p in problems)
    approval = {**approve(body(), "alice"), "signed_at": "2026-11-20T11:00:00"}
    request, problems = crm.parse_change_request(json.dumps({**body(), "approvals": [approval]}).encode())
    assert request is None and any("signed_at" in p for p in problems)


def test_far_future_signed_at_is_rejected():
    doc = body()
    decision = gate(doc, [approve(doc, "alice", signed_at=NOW + timedelta(days=365)), approve(doc, "bob")])
    assert decision.blocked and "is in the future" in rejected_reasons(decision)


def test_clock_skew_tolerance_is_bounded():
    doc = body()
    author = approve(doc, "carol", "author")
    assert gate(doc, [approve(doc, "alice", signed_at=NOW + timedelta(minutes=4)), approve(doc, "bob"), author]).allowed
    assert gate(doc, [approve(doc, "alice", signed_at=NOW + timedelta(minutes=6)), approve(doc, "bob"), author]).blocked


def test_expired_and_stale_approvals_do_not_count():
    doc = body()
    expired = approve(doc, "alice", expires_at=NOW - timedelta(seconds=1))
    stale = approve(doc, "bob", signed_at=NOW - timedelta(hours=73))
    decision = gate(doc, [expired, stale])
    reasons = rejected_reasons(decision)
    assert decision.blocked and "approval expired" in reasons and "older than the maximum approval age" in reasons


def test_expired_or_overlong_change_request_blocks():
    doc = body(created_at="2026-11-01T00:00:00Z", expires_at="2026-11-20T11:59:59Z")
    assert "expired at" in text(gate(doc, [approve(doc, "alice"), approve(doc, "bob")]), CR_VALID)
    doc = body(created_at=None, expires_at="2027-11-20T00:00:00Z")  # no created_at: lifetime measured from now
    assert "more than" in text(gate(doc, [approve(doc, "alice"), approve(doc, "bob")]), CR_VALID)


# --- canonicalisation / parsing --------------------------------------------------------------------------------------


def test_yaml_and_json_forms_of_the_same_request_verify_identically():
    import yaml

    doc = body()
    approvals = [approve(doc, "alice"), approve(doc, "bob"), approve(doc, "carol", "author")]
    as_yaml = yaml.safe_dump({**doc, "approvals": approvals}, sort_keys=False).encode()
    reordered = json.dumps(dict(reversed(list({**doc, "approvals": approvals}.items()))), indent=3).encode()
    assert gate(doc, [], raw=as_yaml).allowed
    assert gate(doc, [], raw=reordered).allowed


def test_yaml_implicit_types_cannot_smuggle_a_different_value():
    # An all-digit commit or an unquoted date are YAML int/date, not strings: refused, never coerced.
    bad = "ticket: CHG-1\nchange_class: normal\nsummary: s\nowner: o\nauthor: a\n" \
          "artifact: {git_commit: 1111111111111111111111111111111111111111}\nstacks: [acme/web/prod]\n" \
          "expires_at: 2026-11-22\n"
    request, problems = crm.parse_change_request(bad.encode())
    assert request is None
    assert any("git_commit" in p for p in problems) and any("expires_at" in p for p in problems)


def test_unknown_fields_are_refused_rather_than_left_unsigned():
    request, problems = crm.parse_change_request(json.dumps({**body(), "approved": True}).encode())
    assert request is None and any("would not be covered by signatures" in p for p in problems)


@pytest.mark.parametrize("raw", [b'{"ticket": "CHG-1", "ticket": "CHG-2"}', b"ticket: CHG-1\nticket: CHG-2\n"])
def test_duplicate_keys_are_refused(raw):
    document, error = crm.parse_document(raw)
    assert error is not None and "duplicate" in error


# --- environment classification -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tags,config", [({"ps019:environment": "development"}, {}),
                                         ({}, {"ps019:environment": "development"}),
                                         ({"ps019:environment": " Staging "}, {"ps019:environment": "dev"})])
def test_stack_owner_cannot_declassify_production(tags, config):
    tier, source = classify_environment("acme", "web", "prod", tags, config)
    assert tier == "production" and "ignored" in source


@pytest.mark.parametrize("stack", ["PROD", "pr\u03bfd", "prod2", "prod.eu", "live"])  # \u03bf: Greek omicron
def test_unrecognised_or_lookalike_stack_names_get_production_rules(stack):
    tier, _ = classify_environment("acme", "web", stack, {"ps019:environment": "development"}, {})
    assert tier in ("production", "unknown")
    decision = gate(body(stacks=[f"acme/web/{stack}"]), [], stack_ref=f"acme/web/{stack}", tier=tier)
    assert decision.rules_tier == "production" and decision.blocked


# --- break-glass grants -------------------------------------------------------------------------------------------------

OP_ARN = "arn:aws:sts::111111111111:assumed-role/BreakGlass/alice"
OP_KEYS = [{"publicKey": signing.public_key_text(KEYS["op"]), "identity": OP_ARN, "roles": ["operator"]},
           {"publicKey": signing.public_key_text(KEYS["sec"]), "identity": ident("sec"),
            "roles": ["security", "approver"]}]


def grant_doc(**over) -> BreakGlassGrant:
    fields = dict(grant_id="BG-20261120-0123456789ab", stack=STACK, operator=OP_ARN, identity_source="aws-sts",
                  reason="TLS cert expired", incident="INC-1", waived_controls=("PS019-IAM-001",),
                  issued_at=NOW - timedelta(minutes=10), expires_at=NOW + timedelta(minutes=50), key_id="")
    fields.update(over)
    return sign_document(BreakGlassGrant(**fields), KEYS["op"])


def grant_records(grant: BreakGlassGrant, edit_signed=None, edit_payload=None) -> list:
    record = grant_record(grant, VerifiedIdentity(grant.operator, "aws-sts", "sts"), "production")
    data = record.model_dump()
    if edit_signed:
        data["payload"]["details"]["signed"].update(edit_signed)
    if edit_payload:
        data["payload"].update(edit_payload)
    return [data]


def check(records, deployer=OP_ARN, stack=STACK, now=NOW, **kw):
    return check_break_glass(records, stack, deployer, now, {"trusted_keys": OP_KEYS}, **kw)


def test_grant_baseline_is_usable_by_its_operator():
    result = check(grant_records(grant_doc()))
    assert result.valid and result.waived_controls == ("PS019-IAM-001",)


@pytest.mark.parametrize("edit", [{"stack": "acme/web/prod-eu"}, {"operator": "arn:aws:sts::1:assumed-role/x/bob"},
                                  {"waived_controls": ["PS019-IAM-001", "PS019-IDENTITY-001"]},
                                  {"expires_at": "2026-11-20T15:00:00Z"}, {"incident": "INC-2"}])
def test_grant_fields_edited_after_signing_make_it_unusable(edit):
    result = check(grant_records(grant_doc(), edit_signed=edit), deployer=edit.get("operator", OP_ARN),
                   stack=edit.get("stack", STACK))
    assert not result.valid and any("signature invalid" in p for p in result.problems)


def test_grant_record_mirror_fields_edited_make_it_unusable():
    result = check(grant_records(grant_doc(), edit_payload={"waived_controls": ["PS019-IAM-001", "PS019-IAM-002"]}))
    assert not result.valid and any("record was edited" in p for p in result.problems)


def test_grant_not_usable_by_another_identity_or_on_another_stack():
    records = grant_records(grant_doc())
    assert not check(records, deployer="arn:aws:sts::111111111111:assumed-role/BreakGlass/bob").valid
    assert not check(records, deployer=None).valid
    other = check(records, stack="acme/web/other-prod", grant_id="BG-20261120-0123456789ab")
    assert not other.valid and any("grant is for stack" in p for p in other.problems)


def test_grant_not_usable_after_close_or_expiry():
    grant = grant_doc()
    close = sign_document(BreakGlassClose(grant_id=grant.grant_id, stack=STACK, closed_by=OP_ARN,
                                          closed_at=NOW - timedelta(minutes=1), key_id=""), KEYS["op"])
    closed = grant_records(grant) + [close_record(close, VerifiedIdentity(OP_ARN, "aws-sts", "sts")).model_dump()]
    assert not check(closed).valid
    assert not check(grant_records(grant), now=NOW + timedelta(hours=1)).valid


def test_grant_by_a_non_operator_key_or_with_overlong_ttl_is_unusable():
    by_security = sign_document(BreakGlassGrant(
        grant_id="BG-20261120-0123456789ac", stack=STACK, operator=ident("sec"), identity_source="aws-sts",
        reason="r", incident="INC-1", issued_at=NOW - timedelta(minutes=1), expires_at=NOW + timedelta(hours=1),
        key_id=""), KEYS["sec"])
    assert not check(grant_records(by_security), deployer=ident("sec")).valid
    long_lived = grant_doc(expires_at=NOW + timedelta(days=30))
    assert not check(grant_records(long_lived)).valid
    future = grant_doc(issued_at=NOW + timedelta(hours=1), expires_at=NOW + timedelta(hours=2))
    assert not check(grant_records(future)).valid


def test_grant_never_waives_evidence_or_break_glass_reporting_controls():
    grant = grant_doc(waived_controls=("PS019-EVID-001", "PS019-GATE-050", "PS019-IAM-001"))
    result = check(grant_records(grant))
    assert result.valid and result.waived_controls == ("PS019-IAM-001",)


def test_local_user_identity_can_never_use_a_grant_in_the_pure_check():
    result = check(grant_records(grant_doc()), deployer_verified_by="local-user")
    assert not result.valid


def _gather(tmp_path, environ: dict, grant: BreakGlassGrant | None = None, raw_settings: dict | None = None,
            store_url: str | None = None, levels: dict | None = None):
    """facts.gather in-process (no pack process): the composition the pack really runs."""
    from ps019.evidence import load_signer, open_store
    from ps019.pack import facts
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings

    url = store_url or f"sqlite:///{tmp_path / 'evidence.db'}"
    if grant is not None:
        with open_store(url) as store:
            store.append(grant_record(grant, VerifiedIdentity(grant.operator, grant.identity_source, "sts"),
                                      "production"), load_signer())  # the evidence key the pack trusts
    raw = raw_settings if raw_settings is not None else {
        "gate": {"trustedKeys": OP_KEYS}, "identity": {"lookup": "off"}, "evidence": {"store_url": url}}
    env = {"PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod", "PULUMI_DRY_RUN": "true",
           "XDG_DATA_HOME": str(tmp_path / "xdg"), **environ}
    run = Run("ps019", "0.0.0", Settings(raw=raw), {}, levels or {}, environ=env)
    return facts.gather(run)


def test_asserted_local_user_name_cannot_ride_on_someone_elses_grant(tmp_path):
    grant = grant_doc(issued_at=datetime.now(timezone.utc) - timedelta(minutes=1),
                      expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    facts = _gather(tmp_path, {"USER": OP_ARN}, grant)
    assert facts.deployer.verified_by == "local-user"
    assert not facts.grant.valid and facts.decision.blocked


def test_sts_grant_cannot_be_used_by_a_ci_environment_variable_claim(tmp_path):
    grant = grant_doc(issued_at=datetime.now(timezone.utc) - timedelta(minutes=1),
                      expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    facts = _gather(tmp_path, {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": OP_ARN}, grant)
    assert facts.deployer.verified_by == "ci"
    assert not facts.grant.valid and facts.decision.blocked


# --- exceptions and waivers --------------------------------------------------------------------------------------------

ROOT_URN = "urn:pulumi:prod::web::pulumi:pulumi:Stack::web-prod"
ROLE_URN = "urn:pulumi:prod::web::aws:iam/role:Role::admin"


def exception(control_id="PS019-IAM-001", resource=ROLE_URN, stack=STACK, signer="sec", **over):
    fields = dict(exception_id="EX-20261120-0123456789ab", control_id=control_id, resource=resource, stack=stack,
                  reason="accepted risk", approved_by=ident("sec"), approved_at=NOW - timedelta(hours=1),
                  expires_at=NOW + timedelta(days=30), key_id="")
    fields.update(over)
    return sign_document(ControlException(**fields), KEYS[signer])


def diag(control_id="PS019-IAM-001", urn=ROLE_URN, level=Level.MANDATORY) -> Diagnostic:
    return Diagnostic(control_id=control_id, level=level, severity=Severity.HIGH, urn=urn, message="finding",
                      resource_type=urn.split("::")[2])


def exceptions_valid(exc, stack=STACK, records=None):
    valid, ignored = active_exceptions(records or [exception_record(exc, "production")], stack, NOW,
                                       {"trusted_keys": OP_KEYS})
    return valid, ignored


def test_exception_waives_only_its_control_on_its_resource():
    valid, _ = exceptions_valid(exception())
    waivers = waivers_from_exceptions(valid)
    assert apply_waivers(diag(), waivers).level is Level.ADVISORY
    assert apply_waivers(diag("PS019-IAM-002"), waivers).level is Level.MANDATORY
    assert apply_waivers(diag(urn=ROLE_URN + "2"), waivers).level is Level.MANDATORY
    assert apply_waivers(diag(urn=ROLE_URN.replace("prod::", "prod-eu::")), waivers).level is Level.MANDATORY


def test_exception_for_another_stack_or_edited_record_is_ignored():
    valid, ignored = exceptions_valid(exception(stack="acme/web/staging",
                                                resource="urn:pulumi:staging::web::aws:iam/role:Role::admin"))
    assert not valid and "for stack acme/web/staging" in ignored[0][1]
    record = exception_record(exception(), "production").model_dump()
    record["payload"]["details"]["signed"]["resource"] = "urn:pulumi:prod::web::aws:iam/role:Role::*"
    valid, ignored = exceptions_valid(None, records=[record])
    assert not valid and "record was edited" in ignored[0][1]
    record = exception_record(exception(), "production").model_dump()
    record["payload"]["details"]["signed"]["control_id"] = "PS019-IAM-002"
    record["payload"]["control_id"] = "PS019-IAM-002"
    valid, ignored = exceptions_valid(None, records=[record])
    assert not valid and "signature invalid" in ignored[0][1]


def test_exception_signed_by_key_without_approver_role_is_ignored():
    exc = exception(signer="op", approved_by=OP_ARN)
    valid, ignored = exceptions_valid(exc)
    assert not valid and "lacks role" in ignored[0][1]


def test_exception_urn_pattern_cannot_escape_its_stack():
    for resource in ("urn:pulumi:*::web::aws:iam/role:Role::admin", "urn:pulumi:prod::*::aws:iam/role:Role::admin",
                     "urn:pulumi:prod::web::*", "urn:pulumi:prod::web::**"):
        valid, ignored = exceptions_valid(exception(resource=resource))
        assert not valid, resource


def test_exception_cannot_waive_the_change_gate(tmp_path):
    import types

    from ps019.evidence import load_signer, open_store
    from ps019.pack import facts as pack_facts

    now = datetime.now(timezone.utc).replace(microsecond=0)
    exc = exception(control_id="PS019-GATE-002", resource=ROOT_URN, approved_at=now - timedelta(minutes=5),
                    expires_at=now + timedelta(days=80))
    url = f"sqlite:///{tmp_path / 'evidence.db'}"
    with open_store(url) as store:
        store.append(exception_record(exc, "production"), load_signer())  # the evidence key the pack trusts
    # what the pack does once per run, then to the gate's own finding on the root stack resource
    facts = _gather(tmp_path, {}, store_url=url, levels={"PS019-GATE-002": Level.MANDATORY})
    # The exception is refused, with the reason, and the gate's own finding stays mandatory.
    assert not facts.history.exceptions.valid
    assert any(exc is not None and exc.control_id == "PS019-GATE-002" for exc, _ in facts.history.exceptions.ignored)
    gate_finding = [d for d in pack_facts.post_process(facts,
                                                       [diag("PS019-GATE-002", urn=ROOT_URN)])
                    if d.control_id == "PS019-GATE-002"]
    assert gate_finding[0].level is Level.MANDATORY, gate_finding[0].message


@pytest.mark.parametrize("resource", ["urn:pulumi:prod::web::*:*", "urn:pulumi:prod::web::[!~]*"])
def test_exception_pattern_matching_every_resource_is_refused(resource):
    valid, _ = exceptions_valid(exception(resource=resource))
    assert not valid


def test_waivers_never_touch_advisory_or_already_waived_findings():
    waiver = Waiver("PS019-IAM-001", "*", "BG-20261120-0123456789ab", "break-glass")
    advisory = diag(level=Level.ADVISORY)
    assert apply_waivers(advisory, [waiver]) == advisory
    assert apply_waivers(diag("PS019-IAM-0011"), [waiver]).level is Level.MANDATORY  # exact ID, no prefix match


# --- evidence chain ----------------------------------------------------------------------------------------------------


@pytest.fixture
def chain(tmp_path):
    from ps019.evidence import Signer, open_store
    from tests.plugins.evidence import make_record

    signer = Signer.generate()
    store = open_store(f"sqlite:///{tmp_path / 'chain.db'}")
    for _ in range(5):
        store.append(make_record(), signer)
    records = list(store.iter_all())
    heads = store.heads()
    store.close()
    return records, heads, {signer.keyid: signer.public_key}, signer


def _doc_replace(stored, **fields):
    from ps019.evidence import StoredRecord

    return StoredRecord(document={**stored.document, **fields}, envelope=stored.envelope)


def test_intact_chain_verifies(chain):
    from ps019.evidence import verify_chain

    records, heads, keys, _ = chain
    assert verify_chain(records, keys, heads).ok


def _tamper(kind, records, signer):
    from ps019.evidence import Signer, StoredRecord
    from ps019.evidence.record import record_hash

    r = list(records)
    if kind == "field_edit":
        r[2] = _doc_replace(r[2], outcome="blocked")
    elif kind == "delete":
        del r[2]
    elif kind == "reorder":
        r[1], r[2] = r[2], r[1]
    elif kind == "truncate_tail":
        del r[-1]
    elif kind == "signature_swap":
        r[2] = StoredRecord(document=r[2].document, envelope=r[3].envelope)
    elif kind == "resign_untrusted":
        doc = {**r[2].document, "outcome": "succeeded", "change_class": "standard"}
        doc["hash"] = None
        doc["hash"] = record_hash(doc)
        r[2] = StoredRecord(document=doc, envelope=Signer.generate().sign_statement(doc["record_id"], doc["hash"], doc))
    elif kind == "rewrite_all_later_untrusted":
        forger = Signer.generate()
        prev = r[1].hash
        for i in range(2, len(r)):
            doc = {**r[i].document, "prev_hash": prev}
            if i == 2:
                doc["actor"] = {**(doc.get("actor") or {}), "id": "someone-else"}
            doc["hash"] = None
            doc["hash"] = record_hash(doc)
            prev = doc["hash"]
            r[i] = StoredRecord(document=doc, envelope=forger.sign_statement(doc["record_id"], doc["hash"], doc))
    elif kind == "replace_with_valid_record_of_same_seq":
        # a record genuinely signed by the trusted key but for a different chain position
        r[2] = _doc_replace(r[2], prev_hash=r[0].hash)
    return r


@pytest.mark.parametrize("kind,codes", [
    ("field_edit", {"edited"}), ("delete", {"gap"}), ("reorder", {"reordered"}), ("truncate_tail", {"truncated"}),
    ("signature_swap", {"edited", "signature"}), ("resign_untrusted", {"unknown_key"}),
    ("rewrite_all_later_untrusted", {"unknown_key"}), ("replace_with_valid_record_of_same_seq", {"edited"}),
])
def test_chain_tampering_is_detected(chain, kind, codes):
    from ps019.evidence import verify_chain

    records, heads, keys, signer = chain
    result = verify_chain(_tamper(kind, records, signer), keys, heads)
    assert not result.ok and result.first_failure.code in codes, result.summary()


def test_sqlite_store_refuses_in_place_edits_and_deletes(tmp_path):
    import sqlite3

    from ps019.evidence import Signer, open_store
    from tests.plugins.evidence import make_record

    path = tmp_path / "immutable.db"
    with open_store(f"sqlite:///{path}") as store:
        store.append(make_record(), Signer.generate())
    con = sqlite3.connect(path)
    for sql in ("UPDATE records SET kind = 'preview'", "DELETE FROM records", "DELETE FROM heads"):
        with pytest.raises(sqlite3.DatabaseError):
            con.execute(sql)
    con.close()


def test_concurrent_appends_never_fork_a_chain(tmp_path):
    from ps019.evidence import Signer, open_store, verify_store
    from tests.plugins.evidence import make_record

    url = f"sqlite:///{tmp_path / 'race.db'}"
    signer = Signer.generate()
    open_store(url).close()
    errors: list[BaseException] = []

    def writer():
        try:
            with open_store(url) as store:
                for _ in range(8):
                    store.append(make_record(), signer)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with open_store(url) as store:
        result = verify_store(store, {signer.keyid: signer.public_key})
        assert result.ok and result.records_checked == 24, result.summary()


# --- secrets -------------------------------------------------------------------------------------------------------------

SECRET = "hunter2-Sup3rS3cret-\u00e9\"quoted\""


def test_known_secret_values_never_reach_the_raw_store_bytes(tmp_path):
    from ps019.evidence import EvidenceSettings, PolicyResult, Signer, emit, open_store
    from tests.plugins.evidence import make_record

    record = make_record(policy_results=[PolicyResult(control_id="PS019-IDENTITY-002", level="mandatory",
                                                      severity="high", urn="urn:x",
                                                      message=f"static key {SECRET} in provider config")],
                         change_request=f"CHG-1 {SECRET}")
    record.forbidden_values = {SECRET}
    db = tmp_path / "secrets.db"
    settings = EvidenceSettings(store_url=f"sqlite:///{db}", spool_dir=str(tmp_path / "spool"))
    assert emit(record, settings, signer=Signer.generate()).ok
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("secrets.db-*"))
    for form in (SECRET, json.dumps(SECRET)[1:-1], SECRET.encode("utf-8").decode("latin-1")):
        assert form.encode("utf-8", "surrogatepass") not in raw
    assert base64.b64encode(SECRET.encode()) not in raw
    # the spool (store down) holds the same redacted record
    down = EvidenceSettings(store_url="postgresql://127.0.0.1:1/none", spool_dir=str(tmp_path / "spool"),
                            connect_timeout_s=0.5)
    record2 = make_record(policy_results=record.policy_results)
    record2.forbidden_values = {SECRET}
    result = emit(record2, down, signer=Signer.generate())
    assert result.status == "spooled"
    spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").iterdir())
    assert SECRET.encode() not in spooled and json.dumps(SECRET)[1:-1].encode() not in spooled


def test_bad_signing_key_error_never_echoes_the_key(monkeypatch):
    from ps019.errors import InputError
    from ps019.evidence import load_signer

    leaked = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LWlzLW5vdC1lZDI1NTE5"
    monkeypatch.delenv("PS019_EVIDENCE_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("PS019_EVIDENCE_SIGNING_KEY", leaked)
    with pytest.raises(InputError) as err:
        load_signer(None)
    assert leaked not in str(err.value) and leaked[:12] not in repr(err.value)


def test_signer_repr_never_shows_private_material():
    from ps019.evidence import Signer

    signer = Signer.generate()
    pem = signer.private_key_pem().decode()
    body_line = pem.splitlines()[1]
    assert body_line not in repr(signer) and body_line not in str(vars(signer).get("source"))


# --- fail closed ------------------------------------------------------------------------------------------------------


def test_invalid_gate_settings_fail_closed(tmp_path):
    facts = _gather(tmp_path, {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_ACTOR": "x"},
                    raw_settings={"gate": {"trustedKeys": "everyone", "minApprovals": 0},
                                  "identity": {"lookup": "off"},
                                  "evidence": {"store_url": f"sqlite:///{tmp_path / 'e.db'}"}})
    assert facts.decision.blocked and facts.decision.rules_tier == "production"


def test_store_outage_makes_grants_and_exceptions_unusable(tmp_path):
    facts = _gather(tmp_path, {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": OP_ARN},
                    raw_settings={"gate": {"trustedKeys": OP_KEYS}, "identity": {"lookup": "off"},
                                  "evidence": {"store_url": "postgresql://127.0.0.1:1/none", "connect_timeout_s": 0.5}})
    assert facts.history.error
    assert not facts.grant.valid and any("cannot be verified" in p for p in facts.grant.problems)
    assert facts.decision.blocked and not facts.waivers


def test_invalid_evidence_settings_are_reported_as_a_mandatory_pack_violation():
    from ps019.controls.pack import settings_valid
    from ps019.pack.settings import Settings

    settings = Settings(raw={"evidence": {"store_url": 42, "bogus": True}})
    errors = settings.validate_all()
    assert "evidence" in errors
    assert settings_valid.CONTROL.level is Level.MANDATORY


def test_store_outage_on_production_is_reported_and_blocking_by_default(tmp_path):
    from ps019.controls.evidence.record_delivered import violations_for
    from ps019.evidence import EvidenceSettings, Signer, emit
    from tests.plugins.evidence import make_record

    down = dict(store_url="postgresql://127.0.0.1:1/none", spool_dir=str(tmp_path / "spool"), connect_timeout_s=0.5)
    default = emit(make_record(), EvidenceSettings(**down), signer=Signer.generate())
    assert default.status == "spooled"
    reported = violations_for(default, is_production=True)
    assert reported and default.record_id in reported[0].message  # never silent
    assert not reported[0].details["advisory"]  # finding 6: blocking unless relaxed
    relaxed = emit(make_record(), EvidenceSettings(**down, outage_level="advisory"), signer=Signer.generate())
    assert violations_for(relaxed, is_production=True)[0].details["advisory"]


# Finding 6, end to end: the pack's store for production comes from the pack config only, and an unreachable store
# blocks an update at its first resource, before anything changes.

PROD = "acme/finding6/prod"


def _six_resources():
    from ps019.engine import EngineResource, StackRef

    stack = StackRef.parse(PROD)
    root = stack.root_urn
    return [EngineResource(urn=root, type="pulumi:pulumi:Stack", custom=False)] + [
        EngineResource(urn=f"urn:pulumi:prod::finding6::aws:s3/bucket:Bucket::b{i}", type="aws:s3/bucket:Bucket",
                       id=f"b{i}", parent=root, inputs={"bucket": f"b{i}"}, outputs={"bucket": f"b{i}"})
        for i in range(3)]


def _six_config(tmp_path, evidence: dict, name: str) -> str:
    # Every control advisory except the evidence one: only the evidence store decides whether the update may run.
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"all": "advisory", "PS019-EVID-001": "mandatory",
                                "ps019-settings": {"identity": {"lookup": "off"}, "evidence": evidence}}))
    return str(path)


def _six_env(monkeypatch):
    for var in ("GITHUB_ACTIONS", "CI", "GITLAB_CI", "PS019_CHANGE_REQUEST", "PS019_BREAK_GLASS_GRANT"):
        monkeypatch.delenv(var, raising=False)


def test_an_environment_variable_cannot_redirect_a_production_record(ps019_pack, evidence_store, tmp_path,
                                                                     monkeypatch):
    """Before: with no store in the pack config, PS019_EVIDENCE_STORE sent the production record to a throwaway
    store. Now production ignores it: the record goes to the per-user default store and the unpinned store blocks."""
    from ps019.engine import run_pass
    from ps019.evidence import open_store

    _six_env(monkeypatch)
    throwaway = f"sqlite:///{tmp_path / 'throwaway.db'}"
    monkeypatch.setenv("PS019_EVIDENCE_STORE", throwaway)
    result = run_pass(ps019_pack, _six_resources(), stack=PROD, dry_run=False,
                      policy_pack_config=_six_config(tmp_path, {}, "unpinned"))
    assert open_store(throwaway).count() == 0
    [blocked] = [s.record for s in evidence_store.query(stack=PROD, kind="blocked")]
    assert result.blocked_at == _six_resources()[0].urn and "not pinned" in blocked.blocked_reason
    assert blocked.recording.store_source == "default"


def test_taking_the_production_store_from_the_environment_is_an_explicit_recorded_relaxation(
        ps019_pack, tmp_path, monkeypatch):
    from ps019.engine import run_pass
    from ps019.evidence import open_store

    _six_env(monkeypatch)
    chosen = f"sqlite:///{tmp_path / 'chosen.db'}"
    monkeypatch.setenv("PS019_EVIDENCE_STORE", chosen)
    config = _six_config(tmp_path, {"production_store_from_environment": True}, "relaxed")
    result = run_pass(ps019_pack, _six_resources(), stack=PROD, dry_run=False, policy_pack_config=config)
    assert result.blocked_at is None and result.stack_analyzed
    [record] = [s.record for s in open_store(chosen).query(stack=PROD)]
    assert record.recording.store_source == "environment"
    assert record.recording.relaxed == ["evidence.production_store_from_environment=true"]


def test_an_unreachable_store_blocks_the_update_at_its_first_resource(ps019_pack, tmp_path, monkeypatch):
    """Before: the update pass only learnt of the outage at AnalyzeStack -- after every resource had been allowed --
    and then only as an advisory. Now the first Analyze blocks and the blocked record is spooled."""
    from ps019.engine import run_pass
    from ps019.evidence import EvidenceSettings, spooled_files

    _six_env(monkeypatch)
    (tmp_path / "down").write_text("the store's directory is a file: unreachable")
    evidence = {"store_url": f"sqlite:///{tmp_path / 'down' / 'e.db'}", "spool_dir": str(tmp_path / "spool")}
    resources = _six_resources()
    result = run_pass(ps019_pack, resources, stack=PROD, dry_run=False,
                      policy_pack_config=_six_config(tmp_path, evidence, "down"))
    assert result.blocked_at == resources[0].urn and result.analyzed_urns == [resources[0].urn]
    [evid] = [d for d in result.diagnostics if d.policy_name == "PS019-EVID-001"]
    assert evid.mandatory and "cannot be reached" in evid.message
    spool = EvidenceSettings(spool_dir=evidence["spool_dir"])
    [spooled] = spooled_files(spool)
    assert json.loads(spooled.read_text())["record"]["kind"] == "blocked"


def test_an_accepted_outage_is_an_explicit_recorded_relaxation(ps019_pack, tmp_path, monkeypatch):
    from ps019.engine import run_pass
    from ps019.evidence import EvidenceSettings, spooled_files

    _six_env(monkeypatch)
    (tmp_path / "down").write_text("")
    evidence = {"store_url": f"sqlite:///{tmp_path / 'down' / 'e.db'}", "spool_dir": str(tmp_path / "spool"),
                "outage_level": "advisory"}
    result = run_pass(ps019_pack, _six_resources(), stack=PROD, dry_run=False,
                      policy_pack_config=_six_config(tmp_path, evidence, "accepted"))
    assert result.blocked_at is None and not result.mandatory
    [spooled] = spooled_files(EvidenceSettings(spool_dir=evidence["spool_dir"]))
    record = json.loads(spooled.read_text())["record"]
    assert record["kind"] == "update" and record["recording"]["relaxed"] == ["evidence.outage_level=advisory"]


# --- the pack, end to end ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_crafted_properties_and_declassifying_tags_through_the_engine(ps019_pack, pack_pool, tmp_path, monkeypatch):
    """A developer's program cannot crash the pack into gRPC with crafted property values, and stack tags/config
    declaring 'development' do not lift the production gate."""
    from ps019.engine import run_pass
    from ps019.engine.resources import EngineResource

    for var in ("GITHUB_ACTIONS", "CI", "GITLAB_CI", "PS019_CHANGE_REQUEST", "PS019_BREAK_GLASS_GRANT"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"ps019-settings": {"identity": {"lookup": "off"}}}))
    root = "urn:pulumi:prod::web::pulumi:pulumi:Stack::web-prod"
    nasty_policy = {"Version": "2012-10-17", "Statement": [{"Effect": ["Allow"], "Action": {"*": 1},
                                                           "Resource": None, "Condition": "\ud800" * 0 + "x" * 50}]}
    deep: dict = {}
    node = deep
    for _ in range(60):
        node["n"] = {}
        node = node["n"]
    resources = [
        EngineResource(urn=root, type="pulumi:pulumi:Stack", inputs={}, outputs={}),
        EngineResource(urn="urn:pulumi:prod::web::aws:iam/policy:Policy::p1", type="aws:iam/policy:Policy",
                       inputs={"policy": json.dumps(nasty_policy), "name": "\u202eevil"}, outputs={}, parent=root),
        EngineResource(urn="urn:pulumi:prod::web::aws:iam/policy:Policy::p2", type="aws:iam/policy:Policy",
                       inputs={"policy": "{not json", "tags": {"__proto__": "x"}}, outputs={}, parent=root),
        EngineResource(urn="urn:pulumi:prod::web::aws:iam/role:Role::r1", type="aws:iam/role:Role",
                       inputs={"assumeRolePolicy": json.dumps([1, 2, 3]), "inlinePolicies": [{"policy": 7}],
                               "deep": deep, "n": 1e308}, outputs={}, parent=root),
    ]
    result = run_pass(ps019_pack, resources, stack=STACK, dry_run=True,
                      config={"ps019:environment": "development"}, tags={"ps019:environment": "development"},
                      policy_pack_config=config, pool=pack_pool)
    internal = [d for d in result.diagnostics if d.policy_name == "PS019-PACK-000"]
    assert not internal, [d.message for d in internal]
    on_root = [d for d in result.diagnostics if d.urn == root and d.mandatory]
    assert any(d.policy_name == "PS019-GATE-001" for d in on_root), "declassified via tags/config"
