"""Environment classification and gate settings: a developer must not be able to declassify production."""

from datetime import timedelta

import pydantic
import pytest

from ps019.gate.settings import EnvironmentSettings, GateSettings, classify_environment, parse_duration

ENV = EnvironmentSettings()


@pytest.mark.parametrize(
    ("stack", "tier"),
    [("prod", "production"), ("eu-prod", "production"), ("Production", "production"), ("staging", "staging"),
     ("dev", "development"), ("feature-x", "unknown")],
)
def test_pack_patterns_classify_by_stack_name(stack, tier):
    assert classify_environment("acme", "web", stack, {}, {}, ENV).tier == tier


def test_patterns_match_full_reference_too():
    env = EnvironmentSettings(tiers={"production": ["acme/payments/*"], "development": ["*"]})
    assert classify_environment("acme", "payments", "blue", {}, {}, env).tier == "production"
    assert classify_environment("acme", "web", "blue", {}, {}, env).tier == "development"


@pytest.mark.parametrize("where", ["tags", "config"])
def test_tag_or_config_cannot_lower_production(where):
    decl = {"ps019:environment": "development"}
    tags, config = (decl, {}) if where == "tags" else ({}, decl)
    tier, source = classify_environment("acme", "web", "prod", tags, config, ENV)
    assert tier == "production"
    assert "ignored (tags and config may only raise the tier)" in source


def test_tag_cannot_declassify_an_unmatched_stack():
    tier, source = classify_environment("acme", "web", "feature-x", {"ps019:environment": "development"}, {}, ENV)
    assert tier == "unknown" and "enforced with the production rules" in source


def test_tag_beats_config_when_raising():
    tier, source = classify_environment("acme", "web", "dev", {"ps019:environment": "production"},
                                        {"ps019:environment": "staging"}, ENV)
    assert tier == "production" and source.startswith("stack tag")


def test_config_can_raise_a_dev_stack_to_production():
    tier, source = classify_environment("acme", "web", "dev", {}, {"ps019:environment": "production"}, ENV)
    assert tier == "production" and source.startswith("stack config ps019:environment")


def test_trusted_tag_may_set_any_tier():
    env = EnvironmentSettings(trusted_declarations=["tag"])
    tier, source = classify_environment("acme", "web", "prod", {"ps019:environment": "staging"}, {}, env)
    assert tier == "staging" and "trusted declaration" in source
    # ...but an untrusted config declaration still only raises.
    assert classify_environment("acme", "web", "prod", {"ps019:environment": "staging"},
                                {"ps019:environment": "production"}, env).tier == "production"


def test_unknown_declared_value_is_ignored_and_named():
    tier, source = classify_environment("acme", "web", "dev", {"ps019:environment": "prd"}, {}, ENV)
    assert tier == "development" and "'prd' ignored (not a known tier" in source


def test_gate_settings_accept_camel_case_and_keep_other_tier_defaults():
    settings = GateSettings.model_validate({"maxApprovalAge": "24h", "rules": {"production": {"normal": {"minApprovals": 3}}}})
    assert settings.max_approval_age == timedelta(hours=24)
    assert settings.rules["production"].normal.min_approvals == 3
    assert settings.rules["staging"].enforcement == "advisory"


def test_unknown_tier_gets_production_rules():
    settings = GateSettings()
    assert settings.rules_for("unknown") is settings.rules["production"]
    assert settings.rules_for("qa") is settings.rules["production"]


@pytest.mark.parametrize(
    "bad",
    [{"ticketPattern": "("}, {"maxApprovalAge": "soon"}, {"trustedKeys": [{"publicKey": "AAAA", "identity": "x"}]},
     {"typo": 1}],
)
def test_invalid_settings_are_rejected(bad):
    with pytest.raises(pydantic.ValidationError):
        GateSettings.model_validate(bad)


def test_durations():
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    with pytest.raises(ValueError, match="e.g. 90m"):
        parse_duration("1 fortnight")
