"""Policy config schemas and metadata (issue 9, "Schemas and metadata"): the engine validates the policy pack config
against each policy's JSON Schema before it configures the pack, and `pulumi policy validate-config` uses the same
schemas. Before this work ps019-settings' sections were `{"type": "object"}`, so any typo passed the engine."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from google.protobuf import empty_pb2, json_format

from ps019.controls.registry import all_controls
from ps019.engine import StackRef, run_pass
from ps019.engine.pack_process import PackProcess, choose_interpreter, read_pack_project
from ps019.engine.runner import pack_environment
from ps019.errors import InputError
from ps019.pack.settings import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "policypacks" / "ps019" / "config.example.json"


@pytest.fixture(scope="module")
def analyzer_info(ps019_pack):
    """GetAnalyzerInfo over gRPC from the real pack process."""
    project = read_pack_project(ps019_pack)
    env = pack_environment(StackRef.parse("acme/schema/dev"), True, {})
    process = PackProcess(project, choose_interpreter(project, env, fallback=__import__("sys").executable), env, 60)
    try:
        yield process.call("GetAnalyzerInfo", empty_pb2.Empty(), timeout=60)
    finally:
        process.close()


def _schemas(info) -> dict:
    return {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies if p.HasField("configSchema")}


def test_settings_schema_is_generated_from_every_section_model(analyzer_info):
    properties = _schemas(analyzer_info)["ps019-settings"]["properties"]
    assert set(properties) == set(SECTIONS) | {"log"}
    for section, target in SECTIONS.items():
        module, name = target.split(":")
        model = getattr(importlib.import_module(module), name)
        schema = properties[section]
        assert schema["type"] == "object" and schema["additionalProperties"] is False, section
        for field_name, info in model.model_fields.items():
            # either spelling is accepted, as the model accepts both
            assert field_name in schema["properties"], (section, field_name)
            if info.alias:
                assert info.alias in schema["properties"], (section, info.alias)
            described = schema["properties"][field_name].get("description")
            assert described or not info.description, (section, field_name)


def test_settings_schema_has_enums_and_required_fields(analyzer_info):
    settings = _schemas(analyzer_info)["ps019-settings"]["properties"]
    declarations = settings["environments"]["properties"]["trustedDeclarations"]
    assert declarations["items"]["enum"] == ["tag", "config"]
    outage = settings["evidence"]["properties"]["outage_level"]
    assert ["advisory", "mandatory"] in [branch.get("enum") for branch in [outage, *outage.get("anyOf", [])]]
    key = settings["gate"]["properties"]["trustedKeys"]["items"]
    required = json.dumps(key.get("required", [])) + json.dumps(key.get("allOf", []))
    assert "publicKey" in required and "identity" in required


def _bad(config: dict, tmp_path: Path) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    return path


BAD_CONFIGS = [
    ({"ps019-settings": {"environments": {"unknownTreatedAs": 5}}},
     "ps019-settings: environments.unknownTreatedAs: must be of type string"),
    ({"ps019-settings": {"evidence": {"outage_level": "sometimes"}}},
     "ps019-settings: evidence.outage_level: must be one of \"advisory\", \"mandatory\""),
    ({"ps019-settings": {"gate": {"trustedKeys": [{"identity": "alice@example.com", "roles": ["approver"]}]}}},
     "ps019-settings: gate.trustedKeys.0: needs 'publicKey' or 'public_key'"),
    ({"ps019-settings": {"environments": {"tierz": {}}}},
     "ps019-settings: environments: Additional properties are not allowed ('tierz' was unexpected)"),
]


@pytest.mark.parametrize("config,expected", BAD_CONFIGS)
def test_the_engine_rejects_a_bad_config_at_load_and_validate_config_says_the_same(
        config, expected, ps019_pack, tmp_path, capsys):
    from ps019.cli import main

    stack = StackRef.parse("acme/schema-bad/dev")
    with pytest.raises(InputError) as engine:
        run_pass(ps019_pack, [], stack=stack, dry_run=True, policy_pack_config=config)
    assert expected in str(engine.value)
    with pytest.raises(SystemExit) as exit_info:
        main(["pack", "validate-config", str(_bad(config, tmp_path))])
    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    assert f"engine: {str(engine.value).split('invalid: ', 1)[1].split(' (and ')[0]}" in out


def test_a_secret_in_a_bad_value_is_never_echoed(ps019_pack, tmp_path, capsys):
    from ps019.cli import main

    secret = "ed25519-private-key-material-4f2a9c"
    config = {"ps019-settings": {"evidence": {"verify_keys": secret, "signing_key": ["not", secret]}}}
    with pytest.raises(InputError) as engine:
        run_pass(ps019_pack, [], stack=StackRef.parse("acme/schema-secret/dev"), dry_run=True,
                 policy_pack_config=config)
    with pytest.raises(SystemExit):
        main(["pack", "validate-config", str(_bad(config, tmp_path)), "--format", "json"])
    out = capsys.readouterr()
    assert secret not in str(engine.value) and secret not in out.out + out.err
    assert "verify_keys: must be of type object" in out.out


def test_the_template_config_validates_and_its_problems_beyond_the_schema_are_reported(tmp_path, capsys):
    from ps019.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["pack", "validate-config", str(EXAMPLE)])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0, out
    # a model rule the JSON Schema cannot express: unknown_treated_as must name one of the tiers
    config = json.loads(EXAMPLE.read_text())
    config["ps019-settings"]["environments"]["unknown_treated_as"] = "prod-ish"
    with pytest.raises(SystemExit) as exit_info:
        main(["pack", "validate-config", str(_bad(config, tmp_path))])
    out = capsys.readouterr().out
    assert exit_info.value.code == 1 and out.startswith("ps019: ps019-settings.environments")


def test_every_policy_has_its_metadata(analyzer_info):
    catalogue = (ROOT / "docs" / "controls.md").read_text()
    anchors = {f"#{m.lower()}" for m in re.findall(r"^## (PS019-[A-Z]+-\d{3})", catalogue, re.MULTILINE)}
    controls = {c.id: c for c in all_controls()}
    assert analyzer_info.readme and analyzer_info.provider == "aws" and "ps019" in analyzer_info.tags
    assert analyzer_info.displayName
    for policy in analyzer_info.policies:
        assert policy.displayName, policy.name
        if policy.name not in controls:
            continue
        control = controls[policy.name]
        assert policy.url.startswith("docs/controls.md#") and policy.url[len("docs/controls.md"):] in anchors
        assert policy.framework.name == "PS-019" and policy.framework.reference == control.clause
        assert policy.remediation_steps == control.remediation
        if control.config_model is not None:
            schema = json_format.MessageToDict(policy.configSchema)
            for name, prop in schema["properties"].items():
                assert prop.get("description") and (prop.get("type") or prop.get("anyOf")), (policy.name, name)
