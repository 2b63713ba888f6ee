"""The example stacks (examples/): their committed exports are real deployment-v3 documents that match the programs,
and each export and each program runs through the engine stand-in, preview and update, with the bundled ps019 pack
and with the probe pack, without ever printing a secret."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

import ps019.cli.analyze as analyze_module
from ps019.cli import main
from ps019.cli.demo import DEMO_SECRET_CONFIG

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
SIG = "4dabf18193072939515e22adb298388d"

# example -> (stack, config file, export) for the programs; every committed export with whether ps019 blocks it
STACKS = {
    "web-service": ("acme/web-service/prod", "Pulumi.prod.yaml", "stack-export.prod.json"),
    "deploy-role": ("acme/deploy-role/dev", "Pulumi.dev.yaml", "stack-export.dev.json"),
}
EXPORTS = {  # export -> (stack, blocked by the bundled pack)
    "web-service/stack-export.prod.json": ("acme/web-service/prod", True),  # production without approval
    "web-service/stack-export.dev.json": ("acme/web-service/dev", False),  # the clean service
    "deploy-role/stack-export.dev.json": ("acme/deploy-role/dev", True),  # over-privileged IAM
}
ALL_SECRETS = [v for values in DEMO_SECRET_CONFIG.values() for v in values.values()]


def _secret_flags(example: str) -> list[str]:
    return [f"--secret-config={k}={v}" for k, v in DEMO_SECRET_CONFIG[example].items()]


def _program_args(example: str) -> list[str]:
    stack, config_file, _ = STACKS[example]
    return ["--program", str(EXAMPLES / example), "--stack", stack, "--config-file",
            str(EXAMPLES / example / config_file), *_secret_flags(example)]


def _state_args(example: str) -> list[str]:
    stack, _, export = STACKS[example]
    return ["--state", str(EXAMPLES / example / export), "--stack", stack]


def _export(example: str) -> dict:
    return json.loads((EXAMPLES / example / STACKS[example][2]).read_text())


def _export_file(export: str) -> dict:
    return json.loads((EXAMPLES / export).read_text())


@pytest.fixture(scope="module")
def _capture_cache():
    return {}


@pytest.fixture(autouse=True)
def _fast(pack_pool, monkeypatch, _capture_cache):
    """Reuse pack processes, and capture each program once per phase (a capture imports pulumi_aws: seconds)."""
    real_capture = analyze_module.capture

    def cached(program, stack, *, dry_run, config):
        key = (str(program), str(stack), dry_run, json.dumps(config.values, sort_keys=True))
        if key not in _capture_cache:
            _capture_cache[key] = real_capture(program, stack, dry_run=dry_run, config=config)
        return _capture_cache[key]

    monkeypatch.setattr(analyze_module, "ENGINE_POOL", pack_pool)
    monkeypatch.setattr(analyze_module, "capture", cached)


@pytest.fixture
def run(capsys):
    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        for secret in ALL_SECRETS:
            assert secret not in out and secret not in err, "a secret value was printed"
        return exit_info.value.code, out, err

    return invoke


# ------------------------------------------------------------------------------------------ the committed exports


def test_every_committed_export_is_tested():
    assert {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.glob("*/stack-export.*.json")} == set(EXPORTS)


@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_export_is_a_deployment_v3_in_dependency_order(export):
    document = _export_file(export)
    assert document["version"] == 3
    deployment = document["deployment"]
    assert {"manifest", "secrets_providers", "resources"} <= set(deployment)
    resources = deployment["resources"]
    assert resources[0]["type"] == "pulumi:pulumi:Stack" and resources[0]["custom"] is False
    seen: dict[str, dict] = {}
    for r in resources:
        for needed in [r.get("parent"), *r.get("dependencies", []),
                       *[u for urns in r.get("propertyDependencies", {}).values() for u in urns]]:
            if needed:
                assert needed in seen, f"{r['urn']} needs {needed} listed earlier"
        if r.get("provider"):
            provider_urn, _, provider_id = r["provider"].rpartition("::")
            assert seen[provider_urn]["type"].startswith("pulumi:providers:")
            assert seen[provider_urn]["id"] == provider_id
        seen[r["urn"]] = r
    assert any(r["type"] == "pulumi:providers:aws" for r in resources)


def test_exports_encode_secrets_as_the_export_does():
    web = {r["urn"].rsplit("::", 1)[1]: r for r in _export("web-service")["deployment"]["resources"]}
    password = web["app-db"]["inputs"]["password"]
    assert password[SIG] == "1b47061264138c4ac30d75fd1eb44270"
    assert json.loads(password["plaintext"]) == DEMO_SECRET_CONFIG["web-service"]["web-service:dbPassword"]
    deploy = {r["urn"].rsplit("::", 1)[1]: r for r in _export("deploy-role")["deployment"]["resources"]}
    assert set(deploy["ci-deployer-key"]["outputs"]["secret"]) == {SIG, "ciphertext"}
    assert deploy["deployer"]["type"] == "pulumi:providers:aws"
    assert "plaintext" in deploy["deployer"]["inputs"]["secretKey"]


# ----------------------------------------------------------------------------------- exports through the stand-in


@pytest.mark.parametrize("export", sorted(EXPORTS))
@pytest.mark.parametrize("mode", ["--preview", "--update"])
@pytest.mark.parametrize("fmt", ["table", "json", "sarif"])
def test_export_through_the_bundled_pack(run, export, mode, fmt):
    stack, blocked = EXPORTS[export]
    code, out, err = run("analyze", "--state", EXAMPLES / export, "--stack", stack, mode, "--format", fmt)
    assert code == (1 if blocked else 0), err
    if fmt == "json":
        report = json.loads(out)
        (pass_,) = report["passes"]
        assert pass_["pack"]["name"] == "ps019"
        assert pass_["dry_run"] is (mode == "--preview")
        assert pass_["analyzed_urns"][0].split("::")[2] == "pulumi:pulumi:Stack"  # the gate fires first
        if mode == "--update" and blocked:
            assert pass_["blocked_at"] is not None and not pass_["stack_analyzed"]
        else:
            assert len(pass_["analyzed_urns"]) == len(_export_file(export)["deployment"]["resources"])
            assert pass_["stack_analyzed"]
        assert report["controls"], "ps019 violations cite their controls"
        assert all(c["clause"] for c in report["controls"].values())
    if fmt == "sarif":
        jsonschema.Draft4Validator(SARIF_SCHEMA).validate(json.loads(out))


def test_deploy_role_export_is_blocked_by_least_privilege_controls(run):
    code, out, _ = run("analyze", *_state_args("deploy-role"), "--format", "json")
    assert code == 1
    mandatory = {(d["policy"], d["urn"].rsplit("::", 1)[1]) for d in json.loads(out)["passes"][0]["diagnostics"]
                 if d["level"] == "mandatory"}
    assert ("PS019-IAM-002", "deploy-role") in mandatory  # trusts "*"
    assert ("PS019-IAM-001", "deploy-everything") in mandatory  # "Action": "*"
    assert ("PS019-IAM-003", "deploy-admin") in mandatory  # AdministratorAccess
    assert ("PS019-IAM-004", "ci-deployer-key") in mandatory  # long-lived access key


def test_web_service_export_policies_see_the_secret_as_plaintext(run, tmp_path):
    # The probe pack reports a SHA-256 of each property: the password arrives decrypted, as the engine delivers it.
    code, out, _ = run("analyze", *_state_args("web-service"), "--policy-pack", ROOT / "tests" / "packs" / "probe",
                       "--format", "json")
    assert code == 0
    (seen,) = [json.loads(d["message"].split("\n", 1)[1]) for d in json.loads(out)["passes"][0]["diagnostics"]
               if d["policy"] == "probe-resource" and d["urn"].endswith("::app-db")]
    secret = DEMO_SECRET_CONFIG["web-service"]["web-service:dbPassword"]
    assert seen["types"]["password"] == "str"
    assert seen["hashes"]["password"] == hashlib.sha256(json.dumps(secret).encode()).hexdigest()
    assert seen["numbers"]["allocatedStorage"] == 50.0  # numbers travel as doubles


# ---------------------------------------------------------------------------------- programs through the stand-in


@pytest.mark.parametrize("example", sorted(STACKS))
def test_program_up_preview_and_update_match_the_committed_export(run, example):
    code, out, err = run("up", *_program_args(example), "--policy-pack", ROOT / "tests" / "packs" / "probe",
                         "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    export_urns = {r["urn"] for r in _export(example)["deployment"]["resources"]}
    assert [p["phase"] for p in report["passes"]] == ["preview", "update"]
    for pass_ in report["passes"]:
        assert set(pass_["analyzed_urns"]) == export_urns, "examples/make_exports.py is out of date"
        assert pass_["analyzed_urns"][0].split("::")[2] == "pulumi:pulumi:Stack"


@pytest.mark.parametrize("example", sorted(STACKS))
def test_program_preview_through_the_bundled_pack(run, example):
    # (The update capture of each program goes through the pack in the `up` test above; each extra pack
    # configuration costs a pack start, so the ps019 pack sees the programs' previews here.)
    code, out, err = run("analyze", *_program_args(example), "--preview", "--format", "json")
    assert code == 1, err
    (pass_,) = json.loads(out)["passes"]
    assert pass_["pack"]["name"] == "ps019" and pass_["dry_run"] is True
    if example == "deploy-role":
        policies = {d["policy"] for d in pass_["diagnostics"] if d["level"] == "mandatory"}
        assert {"PS019-IAM-001", "PS019-IAM-002", "PS019-IAM-003", "PS019-IAM-004"} <= policies
