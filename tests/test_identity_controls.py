"""Deploy-identity controls (PS019-IDENTITY-0NN) over their fixtures, ARN classification and settings."""

from __future__ import annotations

import pytest

from ps019.iam.arns import classify_caller_arn
from ps019.iam.deploy_identity import DeployIdentity
from ps019.aws.settings import IdentitySettings, role_arn_matches
from tests.fixture_cases import load_cases
from ps019.controls.registry import all_controls
from tests.test_controls_iam import assert_expectation

CASES = load_cases("ps019.controls.identity")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fixture(case):
    violations = assert_expectation(case)
    # Provider credentials are secrets: never echoed in a message or its details.
    for v in violations:
        for key in ("accessKey", "secretKey", "token"):
            value = case.raw.get("props", {}).get(key)
            if isinstance(value, str) and value and not value.startswith("04da6b54"):
                assert value not in v.message and value not in str(dict(v.details))


def test_every_identity_control_has_fixtures_and_metadata():
    ids = {c.id for c in all_controls() if c.id.startswith("PS019-IDENTITY-")}
    assert ids == {f"PS019-IDENTITY-00{i}" for i in range(1, 5)}
    assert ids == {c.control.id for c in CASES}
    for c in all_controls():
        if c.id in ids:
            assert c.title and c.rationale and c.remediation and "PS-019 §3" in c.clause


@pytest.mark.parametrize("arn, kind, role, session", [
    ("arn:aws:iam::123456789012:root", "root", None, None),
    ("arn:aws:iam::123456789012:user/ci/deployer", "iam-user", None, None),
    ("arn:aws:sts::123456789012:assumed-role/pulumi-deploy/ci-42", "assumed-role", "pulumi-deploy", "ci-42"),
    ("arn:aws-us-gov:sts::123456789012:assumed-role/r/s@example.com", "assumed-role", "r", "s@example.com"),
    ("arn:aws:iam::123456789012:role/path/Deploy", "role", "Deploy", None),
    ("arn:aws:sts::123456789012:federated-user/bob", "federated", None, None),
    ("arn:aws:sts::123456789012:assumed-role/no-session", "unknown", None, None),
    ("arn:aws:s3:::bucket", "unknown", None, None),
    ("", "unknown", None, None),
    (None, "unknown", None, None),
])
def test_classify_caller_arn(arn, kind, role, session):
    caller = classify_caller_arn(arn)
    assert (caller.kind, caller.role_name, caller.session_name) == (kind, role, session)


def test_assumed_role_maps_to_role_arn_in_its_partition():
    caller = classify_caller_arn("arn:aws-cn:sts::123456789012:assumed-role/deploy/s")
    assert caller.role_arn() == "arn:aws-cn:iam::123456789012:role/deploy"
    assert caller.role_arn("/ci/") == "arn:aws-cn:iam::123456789012:role/ci/deploy"


def test_pattern_matching_is_exact_about_accounts_and_case():
    patterns = ["arn:aws:iam::123456789012:role/pulumi-deploy-*"]
    assert role_arn_matches(["arn:aws:iam::123456789012:role/pulumi-deploy-web"], patterns)
    assert not role_arn_matches(["arn:aws:iam::123456789013:role/pulumi-deploy-web"], patterns)
    assert not role_arn_matches(["arn:aws:iam::123456789012:role/Pulumi-Deploy-web"], patterns)
    assert not role_arn_matches(["arn:aws:iam::123456789012:role/pulumi-deploy"], patterns)


def test_settings_accept_a_single_pattern_and_reject_unknown_keys():
    settings = IdentitySettings.model_validate({"allowed_deploy_roles": {"production": "arn:aws:iam::1:role/x"}})
    assert settings.patterns_for("production") == ("arn:aws:iam::1:role/x",)
    assert settings.patterns_for("staging") is None
    with pytest.raises(Exception):
        IdentitySettings.model_validate({"allowed_deploy_role": {}})
    with pytest.raises(Exception):
        IdentitySettings.model_validate({"connect_timeout_seconds": 600})


@pytest.mark.parametrize("lookup, config, env, expected", [
    ("auto", {}, {}, False),
    ("auto", {"aws:region": "us-east-1"}, {}, True),
    ("auto", {"aws-native:region": "us-east-1"}, {}, True),
    ("auto", {}, {"AWS_ACCESS_KEY_ID": "AKIA"}, True),
    ("auto", {}, {"AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}, True),
    ("off", {"aws:region": "us-east-1"}, {"AWS_ACCESS_KEY_ID": "AKIA"}, False),
    ("on", {}, {}, True),
])
def test_should_lookup(lookup, config, env, expected):
    assert IdentitySettings(lookup=lookup).should_lookup(config, env) is expected


def test_deploy_identity_round_trips_through_evidence():
    identity = DeployIdentity.from_mapping({
        "arn": "arn:aws:sts::123456789012:assumed-role/deploy/ci", "role_arn": "arn:aws:iam::123456789012:role/x/deploy",
        "policies": [{"name": "AdministratorAccess", "source": "managed", "admin_equivalent": True, "verdict": "deny"}],
    })
    assert identity.kind == "assumed-role" and identity.account == "123456789012"
    assert DeployIdentity.from_mapping(identity.to_evidence()) == identity
    assert identity.candidate_role_arns() == ("arn:aws:iam::123456789012:role/x/deploy",
                                              "arn:aws:iam::123456789012:role/deploy")
