"""IAM resource controls (PS019-IAM-0NN): one test per fixture beside each control, plus the contract every
control must keep (metadata, registry, no secret in messages)."""

from __future__ import annotations

import json

import pytest

from tests.fixture_cases import load_cases
from ps019.controls.registry import all_controls
from ps019.model import UNKNOWN, ResourceView

CASES = load_cases("ps019.controls.iam")
# (the resource-policy controls have their own package and test module: tests/test_controls_resource_policy.py)


def assert_expectation(case) -> list:
    violations = case.run()
    if case.expect == "allow":
        assert violations == [], f"{case.id}: expected no violation, got {[v.message for v in violations]}"
        return violations
    assert violations, f"{case.id}: expected a violation ({case.expect}), got none"
    if case.expect == "deny":
        assert any(not v.details.get("advisory") for v in violations), f"{case.id}: only advisories"
    for v in violations:
        unverifiable = bool(v.details.get("unverifiable"))
        if case.expect == "unverifiable":
            assert unverifiable, f"{case.id}: {v.message}"
            assert "cannot be verified until update" in v.message
        else:
            assert not unverifiable, f"{case.id}: unexpected unverifiable: {v.message}"
        if case.expect == "advisory":
            assert v.details.get("advisory") is True, f"{case.id}: expected advisory: {v.message}"
        if case.expect == "error":
            assert v.details.get("verdict") == "error" or v.details.get("error"), f"{case.id}: {v.details}"
        if case.expect == "deny":
            assert v.details.get("verdict") != "error", f"{case.id}: got an error, expected deny: {v.message}"
        for text in case.message_contains:
            assert text in v.message, f"{case.id}: {text!r} not in {v.message!r}"
        json.dumps(dict(v.details))  # details go into the evidence record: plain JSON only
    return violations


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fixture(case):
    assert_expectation(case)


def test_every_iam_control_has_allow_and_deny_fixtures():
    by_control: dict[str, set] = {}
    for case in CASES:
        by_control.setdefault(case.control.id, set()).add(case.expect)
    iam_ids = {c.id for c in all_controls() if c.id.startswith("PS019-IAM-")}
    assert iam_ids == set(by_control), "every IAM control needs fixtures beside it"
    for control_id, expects in by_control.items():
        assert {"allow", "deny"} <= expects, control_id


def test_iam_controls_are_registered_with_complete_metadata():
    iam = [c for c in all_controls() if c.id.startswith("PS019-IAM-")]
    assert [c.id for c in iam] == [f"PS019-IAM-00{i}" for i in range(1, 6)]
    for c in iam:
        assert c.title and c.rationale and c.remediation
        assert "PS-019 §3" in c.clause
        assert c.resource_types, c.id


def test_every_required_resource_type_is_covered():
    covered = {t for c in all_controls() if c.id.startswith("PS019-IAM-") for t in c.resource_types}
    required = {
        "aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment", "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment", "aws:iam/user:User", "aws:iam/accessKey:AccessKey",
        "aws-native:iam:Role", "aws-native:iam:Policy", "aws-native:iam:RolePolicy", "aws-native:iam:ManagedPolicy",
        "aws-native:iam:User", "aws-native:iam:AccessKey",
    }
    assert required <= covered, required - covered


def _control(control_id):
    return next(c for c in all_controls() if c.id == control_id)


def _ctx(dry_run=False):
    from ps019.controls.base import RunContext

    return RunContext(organization="acme", project="example", stack="prod", dry_run=dry_run, tier="production")


def _view(rtype, props, secret_paths=()):
    return ResourceView(urn=f"urn:pulumi:prod::example::{rtype}::r", type=rtype, name="r", props=props,
                        secret_paths=frozenset(secret_paths))


def test_role_reports_trust_inline_and_managed_problems_separately():
    """One over-privileged role: each control names its own part, so a user can fix them one by one."""
    props = {
        "assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]}),
        "inlinePolicies": [{"name": "all", "policy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]})}],
        "managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
    }
    view = _view("aws:iam/role:Role", props)
    found = {c.id: list(c.check(view, _ctx(), c.params(None))) for c in all_controls() if c.applies_to(view.type)}
    assert "assumeRolePolicy" in found["PS019-IAM-002"][0].message
    assert "inlinePolicies[0].policy" in found["PS019-IAM-001"][0].message
    assert "AdministratorAccess" in found["PS019-IAM-003"][0].message


def test_preview_unknown_then_update_known_gives_advisory_then_full_check():
    control = _control("PS019-IAM-001")
    preview = list(control.check(_view("aws:iam/policy:Policy", {"policy": UNKNOWN}), _ctx(dry_run=True), {}))
    assert len(preview) == 1 and preview[0].details["unverifiable"]
    star = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    update = list(control.check(_view("aws:iam/policy:Policy", {"policy": star}), _ctx(), {}))
    assert len(update) == 1 and not update[0].details.get("unverifiable")
    assert update[0].details["verdict"] == "deny"


def test_partial_document_never_passes_silently_even_if_known_parts_pass():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": UNKNOWN}]}
    out = list(_control("PS019-IAM-001").check(_view("aws-native:iam:ManagedPolicy", {"policyDocument": doc}),
                                               _ctx(dry_run=True), {}))
    assert len(out) == 1 and out[0].details["unverifiable"]


def test_unknown_in_a_deny_statement_is_not_treated_as_a_pass_or_a_block():
    """An unknown inside a Deny could subtract the grant, so the preview reports advisory, not mandatory."""
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": UNKNOWN, "Resource": "*"}]}
    out = list(_control("PS019-IAM-001").check(_view("aws-native:iam:ManagedPolicy", {"policyDocument": doc}),
                                               _ctx(dry_run=True), {}))
    assert out and all(v.details.get("unverifiable") for v in out)


def test_grammar_error_message_quotes_the_precise_error():
    bad = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "s3:GetObject",
                                                              "Resource": "*"}]})
    from ps019.iam import analyze_policy

    expected = analyze_policy(bad).message
    out = list(_control("PS019-IAM-001").check(_view("aws:iam/policy:Policy", {"policy": bad}), _ctx(), {}))
    assert expected and expected in out[0].message


def test_secret_values_never_appear_in_messages():
    secret = "very-secret-login-password-123"
    view = _view("aws-native:iam:User", {"userName": "alice", "loginProfile": {"password": secret}},
                 secret_paths=[("loginProfile", "password")])
    for control in all_controls():
        if control.applies_to(view.type) and control.id.startswith("PS019-IAM-"):
            for v in control.check(view, _ctx(), control.params(None)):
                assert secret not in v.message and secret not in json.dumps(dict(v.details))


def test_every_managed_policy_attachment_path_has_allow_and_deny_fixtures():
    """PS019-IAM-003 judges each way a managed policy reaches an identity; each has a fixture it passes and one it
    denies (by content, not by a list of names)."""
    from ps019.controls.iam.admin_policy_attachment import ARN_PATHS

    seen: dict[str, set] = {}
    for case in CASES:
        if case.control.id == "PS019-IAM-003":
            seen.setdefault(case.view.type, set()).add(case.expect)
    for rtype in ARN_PATHS:
        assert {"allow", "deny"} <= seen.get(rtype, set()), rtype
