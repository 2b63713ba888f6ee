"""Control parameters come from one pydantic model per control (issue 9, "Schemas and metadata"): the policy's JSON
Schema that the engine validates before Configure, `ps019 pack validate-config`, the catalogue and the params a check
receives are all generated from it. These tests hold the two validations (the engine's JSON Schema, the pack's model)
to the same verdict on good and bad configs, and show what the pack does when an engine did not validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi.runtime.proto import analyzer_pb2

from ps019.controls.registry import all_controls
from ps019.engine.policy_config import PolicyConfig, validation_errors
from ps019.pack import analyzer_info
from ps019.pack.schema import control_config_problems, control_config_schema

ROOT = Path(__file__).resolve().parents[1]
CONFIGURABLE = [c for c in all_controls() if c.config_model is not None]
INFO = analyzer_info()
SCHEMAS = {p.name: json_format.MessageToDict(p.configSchema) for p in INFO.policies if p.HasField("configSchema")}


ONE_POLICY = {p.name: analyzer_pb2.AnalyzerInfo(policies=[p]) for p in INFO.policies}


def engine_says_valid(control_id: str, properties: dict) -> bool:
    """The engine's validatePolicyPackConfig for this one policy (``ps019.engine.policy_config``)."""
    return not validation_errors(ONE_POLICY[control_id], {control_id: PolicyConfig(None, properties)})


def ps019_says_valid(control, properties: dict) -> bool:
    return not control_config_problems(control, properties)


def test_every_control_with_parameters_declares_a_model_and_no_hand_written_schema():
    from ps019.controls.base import Control

    assert not hasattr(Control, "config_schema") and not hasattr(Control, "defaults")
    assert len(CONFIGURABLE) >= 16  # identity 4, resource policy 9, IAM 2, promotion 1
    for control in CONFIGURABLE:
        properties, _ = control_config_schema(control)
        assert SCHEMAS[control.id]["properties"] == properties, control.id
        for name, prop in properties.items():
            assert prop.get("description") and "default" in prop, (control.id, name)
        # the model's defaults are what the check gets when nothing is configured, and they pass both validations
        defaults = {name: prop["default"] for name, prop in properties.items()}
        assert control.params(None) == defaults
        assert engine_says_valid(control.id, defaults) and ps019_says_valid(control, defaults)


# (control, config, valid): what a platform team writes, right and wrong
TABLE = [
    ("PS019-RBP-001", {"trustedAccountIds": ["123456789012"]}, True),
    ("PS019-RBP-001", {"trustedAccountIds": ["12345678901"]}, False),  # 11 digits
    ("PS019-RBP-001", {"trustedAccountIds": ["123456789012\n"]}, False),  # Go's `$` is the end of the text
    ("PS019-RBP-001", {"trustedAccountIds": [123456789012]}, False),  # a number, not a string
    ("PS019-RBP-001", {"trustedAccountIds": "123456789012"}, False),  # one string, not a list
    ("PS019-RBP-001", {"trustedAccountIds": None}, False),
    ("PS019-RBP-001", {"trustedAcountIds": ["x"]}, True),  # an unknown key: both ignore it (validate-config notes it)
    ("PS019-IDENTITY-001", {"tiers": ["production", "staging"]}, True),
    ("PS019-IDENTITY-001", {"tiers": ["prod"]}, False),  # not a tier
    ("PS019-IDENTITY-001", {"tiers": ["Production"]}, False),
    ("PS019-IDENTITY-001", {"tiers": []}, True),
    ("PS019-IDENTITY-003", {"allowedDeployRoles": {"production": ["arn:aws:iam::*:role/deploy"]}}, True),
    ("PS019-IDENTITY-003", {"allowedDeployRoles": {"production": "arn:aws:iam::*:role/deploy"}}, False),
    ("PS019-IDENTITY-003", {"allowedDeployRoles": ["arn:aws:iam::*:role/deploy"]}, False),
    ("PS019-IAM-003", {"extraAdminPolicyArns": ["arn:aws:iam::123456789012:policy/*"]}, True),
    ("PS019-IAM-003", {"extraAdminPolicyArns": [{"arn": "x"}]}, False),
    ("PS019-IAM-005", {"allowedUserNames": ["svc-*"]}, True),
    ("PS019-IAM-005", {"allowedUserNames": [True]}, False),
    ("PS019-EVID-002", {"match_on": "git_commit", "required_tier": "staging", "check_previews": False}, True),
    ("PS019-EVID-002", {"required_tier": None}, True),
    ("PS019-EVID-002", {"match_on": "commit"}, False),
    ("PS019-EVID-002", {"check_previews": "false"}, False),  # no coercion from text
    ("PS019-EVID-002", {"check_previews": 0}, False),
    ("PS019-EVID-002", {"gated_tiers": "production"}, False),
]


@pytest.mark.parametrize("control_id,config,valid", TABLE)
def test_engine_and_pack_agree_on_the_table(control_id, config, valid):
    control = next(c for c in CONFIGURABLE if c.id == control_id)
    assert engine_says_valid(control_id, config) is valid
    assert ps019_says_valid(control, config) is valid


# Random configs: the declared keys (and one unknown), each with a value that is sometimes right and often not. Most
# values come from a pool of what a lax validator would coerce (text for booleans, 0/1, numbers for strings, one
# string for a list) and of near-misses of the declared patterns and enums.
_BAIT = st.sampled_from([
    "true", "false", 0, 1, 1.0, 123456789012, "123456789012", "123456789012\n", " 123456789012", "12345678901",
    "1234567890123", "١٢٣٤٥٦٧٨٩٠١٢", "production", "staging", "development", "unknown", "Production", "prod",
    "source_digest", "git_commit", "either", "arn:aws:iam::123456789012:role/deploy", "", None, True, False])
_SCALARS = st.one_of(_BAIT, _BAIT, st.integers(-2, 10**13), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(max_size=14))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["production", "staging", "x", ""]), inner,
                                                 max_size=3)), max_leaves=6)


@st.composite
def configs(draw):
    control = draw(st.sampled_from(CONFIGURABLE))
    keys = sorted(control_config_schema(control)[0]) + ["notAParameter"]
    return control, draw(st.dictionaries(st.sampled_from(keys), _VALUES, max_size=len(keys)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_engine_and_pack_agree_on_random_configs(case):
    control, config = case
    engine = engine_says_valid(control.id, config)
    assert ps019_says_valid(control, config) is engine, (control.id, config)
    if engine:  # what the check then receives: every parameter, validated, the configured values kept
        params = control.params(config)
        assert set(params) == set(control_config_schema(control)[0])
        assert all(params[k] == v for k, v in config.items() if k in params)


def test_validate_config_reports_a_bad_control_parameter_as_the_engine_would(tmp_path, capsys):
    from ps019.cli import main

    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"PS019-RBP-003": {"trustedAccountIds": ["12345678901"], "trustedAcountIds": []},
                                "PS019-IDENTITY-001": {"enforcementLevel": "mandatory", "tiers": ["prod"]}}))
    with pytest.raises(SystemExit) as exit_info:
        main(["pack", "validate-config", str(path)])
    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    assert "engine: PS019-RBP-003: trustedAccountIds.0: must match ^[0-9]{12}$" in out
    assert "ps019: PS019-RBP-003.trustedAccountIds[0]: string should match pattern" in out
    assert "engine: PS019-IDENTITY-001: tiers.0: must be one of" in out
    assert "ps019: PS019-IDENTITY-001.tiers[0]: input should be 'production'" in out
    assert "note: PS019-RBP-003.trustedAcountIds is not a parameter of that policy" in out


def test_pack_schema_prints_the_generated_schema(capsys):
    from ps019.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["pack", "schema", "--policy", "PS019-IDENTITY-001"])
    assert exit_info.value.code == 0
    schema = json.loads(capsys.readouterr().out)["PS019-IDENTITY-001"]
    assert schema["type"] == "object"
    assert schema["properties"]["tiers"]["items"]["enum"] == ["production", "staging", "development", "unknown"]
    assert schema["properties"]["tiers"]["default"] == ["production", "unknown"]


def test_an_engine_that_does_not_validate_cannot_make_a_control_run_with_values_nobody_chose():
    """An old engine (or one that skipped validation) configures the pack with a parameter that breaks the model: the
    control reports that it is not checked, and PS019-PACK-001 fails the run, naming the problem."""
    from pulumi.runtime import proto
    from google.protobuf import struct_pb2

    from ps019.controls.registry import all_controls as controls
    from ps019.engine.policy_config import PolicyConfig as Cfg, merge_config, to_configure_request
    from ps019.model import Level
    from ps019.pack import PACK_NAME, build_policies
    from ps019.pack.servicer import Ps019Servicer

    servicer = Ps019Servicer(PACK_NAME, "0.0.0", controls(), build_policies(controls()))
    config = merge_config(INFO, {"PS019-RBP-004": Cfg(Level.MANDATORY, {"trustedAccountIds": "123456789012"})})
    servicer.Configure(to_configure_request(config), None)
    stack = servicer.Analyze(proto.AnalyzeRequest(urn="urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev",
                                                  type="pulumi:pulumi:Stack", name="p-dev"), None)
    pack = [d for d in stack.diagnostics if d.policyName == "PS019-PACK-001"]
    assert pack and pack[0].enforcementLevel == proto.MANDATORY
    assert "PS019-RBP-004.trustedAccountIds: input should be a valid list" in pack[0].message
    props = struct_pb2.Struct()
    props.update({"queueUrl": "q", "policy": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*",
                                                                        "Action": "sqs:SendMessage", "Resource": "*"}]})})
    queue = servicer.Analyze(proto.AnalyzeRequest(
        urn="urn:pulumi:dev::p::aws:sqs/queuePolicy:QueuePolicy::q", type="aws:sqs/queuePolicy:QueuePolicy",
        name="q", properties=props), None)
    found = [d for d in queue.diagnostics if d.policyName == "PS019-RBP-004"]
    assert len(found) == 1 and "PS019-RBP-004 is not checked: its config in the policy pack config is invalid" \
        in found[0].message and found[0].enforcementLevel == proto.MANDATORY


def test_the_pack_does_not_load_pydantic_at_start_up():
    """The models are named by strings and imported on first use: the registry and the servicer load without them."""
    code = ("import sys; sys.modules.setdefault('rich', None)\n"
            "from ps019.controls.registry import all_controls\n"
            "from ps019.pack import build_policies, PACK_NAME\n"
            "from ps019.pack.servicer import Ps019Servicer\n"
            "c = all_controls(); Ps019Servicer(PACK_NAME, '0', c, build_policies(c))\n"
            "heavy = [m for m in ('pydantic', 'jwt', 'ahocorasick', 'cryptography', 'jsonschema') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
