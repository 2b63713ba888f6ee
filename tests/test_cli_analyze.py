"""`ps019 analyze` / `ps019 up` end to end through the engine stand-in and real pack processes (tests/packs/).

In-process through ``ps019.cli.main`` (the real entry point: exit statuses and the one-line error printing are its
job) with pack processes reused from the session ``pack_pool``; a few subprocess tests prove the installed command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from ps019.cli import main

ROOT = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
KNOWN_SECRET = "s3cr3t-Plaintext-4f9a1c"  # must never be printed, in any format
STACK_URN = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev"
PROVIDER_URN = "urn:pulumi:dev::proj::pulumi:providers:aws::default"


def _resource(name: str, inputs: dict, outputs: dict | None = None, rtype: str = "aws:s3/bucket:Bucket") -> dict:
    return {"urn": f"urn:pulumi:dev::proj::{rtype}::{name}", "custom": True, "id": f"{name}-id", "type": rtype,
            "inputs": inputs, "outputs": outputs if outputs is not None else dict(inputs),
            "parent": STACK_URN, "provider": f"{PROVIDER_URN}::0b6c9a4e-1111-2222-3333-444455556666",
            "dependencies": [], "propertyDependencies": {}}


def _export(path: Path, *resources: dict) -> Path:
    document = {"version": 3, "deployment": {
        "manifest": {"time": "2026-11-01T10:00:00Z", "magic": "0" * 64, "version": "v3.205.0"},
        "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:AAAAAAAAAAA=:v1:AAAAAAAAAAAAAAAA:AAAA"}},
        "resources": [
            {"urn": STACK_URN, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": {}},
            {"urn": PROVIDER_URN, "custom": True, "id": "0b6c9a4e-1111-2222-3333-444455556666",
             "type": "pulumi:providers:aws", "inputs": {"region": "us-east-1"}, "outputs": {"region": "us-east-1"}},
            *resources,
        ]}}
    path.write_text(json.dumps(document))
    return path


def _secret(value) -> dict:
    return {SIG: SECRET_SIG, "plaintext": json.dumps(value)}


@pytest.fixture(autouse=True)
def _reuse_pack_processes(pack_pool, monkeypatch):
    import ps019.cli.analyze as analyze_module

    monkeypatch.setattr(analyze_module, "ENGINE_POOL", pack_pool)


@pytest.fixture
def run(capsys):
    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    return invoke


@pytest.fixture
def forbidden_export(tmp_path):
    return _export(tmp_path / "forbidden.json",
                   _resource("first", {"forbidden": True, "warn": True, "password": _secret(KNOWN_SECRET)}),
                   _resource("second", {"forbidden": True}, {"stackForbidden": True}))


@pytest.fixture
def clean_export(tmp_path):
    return _export(tmp_path / "clean.json", _resource("tidy", {"acl": "private", "warn": True}))


def _pack(test_packs, name):
    return str(test_packs / name)


# ---------------------------------------------------------------------------------------------------- exit statuses


def test_preview_reports_every_violation_grouped_by_resource_and_exits_1(run, forbidden_export, test_packs):
    code, out, err = run("analyze", "--state", forbidden_export, "--stack", "acme/proj/dev",
                         "--policy-pack", _pack(test_packs, "mandatory"))
    assert code == 1
    assert out.index("first") < out.index("second")  # grouped by resource, in analysis order
    assert out.count("no-forbidden") == 2 and "stack-forbidden" in out and "warn" in out
    assert "preview: 4 resources analyzed · 3 mandatory · 1 advisory · stack policies ran · FAILED" in out
    assert "result: failed" in out


def test_update_stops_at_first_mandatory_violation(run, forbidden_export, test_packs):
    code, out, _ = run("analyze", "--update", "--state", forbidden_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json")
    assert code == 1
    report = json.loads(out)
    (update,) = report["passes"]
    assert update["phase"] == "update" and update["dry_run"] is False
    assert update["blocked_at"] == "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::first"
    assert "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::second" not in update["analyzed_urns"]
    assert update["stack_analyzed"] is False
    assert [d["policy"] for d in update["diagnostics"]] == ["no-forbidden", "warn"]


def test_clean_stack_exits_0_with_advisories_only(run, clean_export, test_packs):
    code, out, _ = run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"))
    assert code == 0
    assert "0 mandatory · 1 advisory" in out and "result: passed" in out


def test_any_pack_works_not_only_ps019(run, tmp_path, test_packs):
    public = _export(tmp_path / "public.json", _resource("site", {"acl": "public-read"}))
    code, out, _ = run("analyze", "--state", public, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "third_party"), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["passes"][0]["pack"]["name"] == "aws-python"
    assert [d["policy"] for d in report["passes"][0]["diagnostics"]] == ["s3-no-public-read"]
    assert report["controls"] == {}  # not ps019 controls: no clause to cite


def test_policy_pack_config_downgrades_to_advisory(run, forbidden_export, test_packs, tmp_path):
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"no-forbidden": "advisory", "stack-forbidden": {"enforcementLevel": "disabled"}}))
    code, out, _ = run("analyze", "--state", forbidden_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"), "--policy-pack-config", config,
                       "--format", "json")
    assert code == 0
    diagnostics = json.loads(out)["passes"][0]["diagnostics"]
    assert {d["level"] for d in diagnostics} == {"advisory"}
    assert "stack-forbidden" not in {d["policy"] for d in diagnostics}


# ------------------------------------------------------------------------------------------- config, tags, secrets


def _probe_seen(report: dict, urn_suffix: str) -> dict:
    for d in report["passes"][0]["diagnostics"]:
        if d["policy"] == "probe-resource" and d["urn"].endswith(urn_suffix):
            return json.loads(d["message"].split("\n", 1)[1])
    raise AssertionError(f"no probe diagnostic for {urn_suffix}")


def test_config_secret_config_config_file_and_tags_reach_the_pack(run, clean_export, test_packs, tmp_path):
    import hashlib

    config_file = tmp_path / "Pulumi.dev.yaml"
    config_file.write_text("config:\n  aws:region: eu-west-1\n  proj:replicas: 3\n  proj:tier: dev\n"
                           "  proj:dbPassword:\n    secure: v1:AAAA:BBBB\n")
    policy_config = tmp_path / "probe.json"
    policy_config.write_text(json.dumps({"probe-resource": {"configKeys": [
        "aws:region", "proj:replicas", "proj:tier", "proj:dbPassword", "proj:owner"]}}))
    code, out, err = run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                         "--policy-pack", _pack(test_packs, "probe"), "--policy-pack-config", policy_config,
                         "--config-file", config_file, "--config", "tier=staging", "--config", "proj:owner=team-a",
                         "--secret-config", f"dbPassword={KNOWN_SECRET}", "--tag", "env=dev", "--tag", "team=web",
                         "--format", "json")
    assert code == 0, err
    seen = _probe_seen(json.loads(out), "::tidy")
    assert seen["stack"] == "dev" and seen["project"] == "proj" and seen["organization"] == "acme"
    assert seen["dry_run"] is True
    assert seen["tags"] == {"env": "dev", "team": "web"}
    config = seen["config"]
    assert config["aws:region"] == "eu-west-1" and config["proj:replicas"] == "3"
    assert config["proj:tier"] == "staging"  # --config overrides the config file
    assert config["proj:owner"] == "team-a"
    assert seen["config_hashes"]["proj:dbPassword"] == hashlib.sha256(json.dumps(KNOWN_SECRET).encode()).hexdigest()
    assert KNOWN_SECRET not in out + err


def test_encrypted_config_value_without_secret_config_is_unusable_input(run, clean_export, tmp_path):
    config_file = tmp_path / "Pulumi.dev.yaml"
    config_file.write_text("config:\n  proj:dbPassword:\n    secure: v1:AAAA:BBBB\n")
    code, out, err = run("analyze", "--state", clean_export, "--stack", "acme/proj/dev", "--config-file", config_file)
    assert code == 2 and out == ""
    assert "proj:dbPassword is encrypted" in err and "--secret-config" in err
    assert len(err.strip().splitlines()) == 1


def test_update_flag_reaches_the_pack_as_dry_run_false(run, clean_export, test_packs):
    code, out, _ = run("analyze", "--update", "--state", clean_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "probe"), "--format", "json")
    assert code == 0
    assert _probe_seen(json.loads(out), "::tidy")["dry_run"] is False


@pytest.mark.parametrize("fmt", ["table", "json", "sarif"])
def test_secret_values_never_printed(run, tmp_path, test_packs, fmt):
    # The probe pack's `leak` policy reports a secret verbatim on purpose; no output format may carry it.
    export = _export(tmp_path / "leaky.json", _resource("leaky", {"leakMe": _secret(KNOWN_SECRET),
                                                                  "password": _secret(KNOWN_SECRET)}))
    code, out, err = run("analyze", "--state", export, "--stack", "acme/proj/dev",
                         "--policy-pack", _pack(test_packs, "probe"), "--format", fmt,
                         "--secret-config", f"apiToken={KNOWN_SECRET}")
    assert code in (0, 1)
    assert "leak" in out
    assert KNOWN_SECRET not in out and KNOWN_SECRET not in err


# ------------------------------------------------------------------------------------------------- output formats


def test_json_is_stable_sorted_and_versioned(run, forbidden_export, test_packs):
    args = ("analyze", "--state", forbidden_export, "--stack", "acme/proj/dev",
            "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json")
    _, first, _ = run(*args)
    _, second, _ = run(*args)
    assert first == second
    report = json.loads(first)
    assert first == json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert report["schema_version"] == 1
    assert report["stack"] == "acme/proj/dev" and report["command"] == "analyze"
    assert report["source"] == {"kind": "state", "path": str(forbidden_export), "offline": True}
    assert report["result"] == "failed" and report["exit_code"] == 1
    diagnostic = report["passes"][0]["diagnostics"][0]
    assert set(diagnostic) == {"urn", "resource_type", "policy", "pack", "level", "severity", "message", "phase"}
    assert diagnostic["severity"] == "high" and diagnostic["phase"] == "analyze"


@pytest.mark.parametrize("command", [("analyze",), ("analyze", "--update"), ("up",)])
def test_sarif_validates_against_the_official_schema(run, forbidden_export, test_packs, command):
    code, out, _ = run(*command, "--state", forbidden_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"), "--format", "sarif")
    assert code == 1
    sarif = json.loads(out)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    run_ = sarif["runs"][0]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert set(rules) == {"no-forbidden", "warn", "stack-forbidden"}
    assert rules["no-forbidden"]["help"]["text"].startswith("No forbidden resources.")
    assert rules["no-forbidden"]["properties"]["security-severity"] == "8.0"
    levels = {(r["ruleId"], r["level"]) for r in run_["results"]}
    assert ("no-forbidden", "error") in levels and ("warn", "warning") in levels
    for result in run_["results"]:
        (logical,) = result["locations"][0]["logicalLocations"]
        assert logical["fullyQualifiedName"].startswith("urn:pulumi:dev::proj::")
        assert run_["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_output_file(run, clean_export, test_packs, tmp_path):
    target = tmp_path / "out.sarif"
    code, out, _ = run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"), "--format", "sarif", "-o", target)
    assert code == 0 and out == ""
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(json.loads(target.read_text()))


# ------------------------------------------------------------------------------------------------------------- up


def test_up_runs_preview_then_update(run, clean_export, test_packs):
    code, out, _ = run("up", "--state", clean_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "probe"), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert [(p["phase"], p["dry_run"]) for p in report["passes"]] == [("preview", True), ("update", False)]
    assert [_probe_seen({"passes": [p]}, "::tidy")["dry_run"] for p in report["passes"]] == [True, False]


def test_up_stops_before_the_update_when_the_preview_fails(run, forbidden_export, test_packs):
    code, out, _ = run("up", "--state", forbidden_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert [p["phase"] for p in report["passes"]] == ["preview"]
    assert report["skipped_passes"][0]["phase"] == "update"


def test_up_skip_preview_runs_only_the_update(run, forbidden_export, test_packs):
    code, out, _ = run("up", "--skip-preview", "--state", forbidden_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json")
    assert code == 1
    (update,) = json.loads(out)["passes"]
    assert update["phase"] == "update" and update["blocked_at"].endswith("::first")


def test_up_table_prints_both_passes(run, clean_export, test_packs):
    code, out, _ = run("up", "--state", clean_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"))
    assert code == 0
    assert "preview: 3 resources analyzed" in out and "update: 3 resources analyzed" in out


# -------------------------------------------------------------------------------------------------------- bad input


def _assert_one_line_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ps019: error: "), err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_missing_export(run, tmp_path):
    _assert_one_line_error(*run("analyze", "--state", tmp_path / "nope.json", "--stack", "acme/proj/dev"),
                           "does not exist")


def test_garbled_export(run, tmp_path):
    garbled = tmp_path / "garbled.json"
    garbled.write_text('{"version": 3, "deployment": {"resources": [')
    _assert_one_line_error(*run("analyze", "--state", garbled, "--stack", "acme/proj/dev"), "not valid JSON")


def test_not_an_export(run, tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    _assert_one_line_error(*run("analyze", "--state", other, "--stack", "acme/proj/dev"), "not a pulumi stack export")


def test_export_for_another_stack(run, clean_export):
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", "acme/proj/prod"),
                           "not proj/prod")


@pytest.mark.parametrize("stack", ["justone", "a/b/c/d", "acme/pro j/dev"])
def test_malformed_stack(run, clean_export, stack):
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", stack), "ORGANIZATION/PROJECT/STACK")


def test_pack_without_pulumipolicy_yaml(run, clean_export, test_packs):
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                                "--policy-pack", _pack(test_packs, "no_yaml")), "no PulumiPolicy.yaml")


def test_pack_that_exits_at_start(run, clean_export, test_packs):
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                                "--policy-pack", _pack(test_packs, "exits_at_start")), "before printing its port")


def test_pack_that_hangs_times_out(run, clean_export, test_packs):
    started = time.monotonic()
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                                "--policy-pack", _pack(test_packs, "hangs"), "--timeout", "2"), "within 2s")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("args, fragment", [
    ((), "exactly one of --state"),
    (("--program", "examples/web-service"), "exactly one of --state"),
    (("--config", "novalue"), "expected KEY=VALUE"),
    (("--tag", "=x"), "expected KEY=VALUE"),
    (("--config", ":bad=1"), "[NAMESPACE:]KEY"),
])
def test_bad_flags(run, clean_export, args, fragment):
    state = ("--state", clean_export) if args != () else ()
    _assert_one_line_error(*run("analyze", *state, *args, "--stack", "acme/proj/dev"), fragment)


def test_missing_policy_pack_config_file(run, clean_export, tmp_path):
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                                "--policy-pack-config", tmp_path / "none.json"), "does not exist")


def test_garbled_config_file(run, clean_export, tmp_path):
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text("config: [unclosed\n")
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                                "--config-file", bad), "not valid YAML")


def test_program_directory_that_is_not_a_pulumi_project(run, tmp_path):
    _assert_one_line_error(*run("analyze", "--program", tmp_path, "--stack", "acme/proj/dev"), "no Pulumi.yaml")


# ------------------------------------------------------------------------------------------- the real command line


def _ps019(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ps019.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_real_command_exit_statuses(forbidden_export, clean_export, test_packs, tmp_path):
    failed = _ps019("analyze", "--state", forbidden_export, "--stack", "acme/proj/dev",
                    "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json")
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["exit_code"] == 1  # stdout is pure JSON: logs go to stderr
    passed = _ps019("up", "--state", clean_export, "--stack", "acme/proj/dev",
                    "--policy-pack", _pack(test_packs, "mandatory"))
    assert passed.returncode == 0, passed.stderr
    unusable = _ps019("analyze", "--state", tmp_path / "missing.json", "--stack", "acme/proj/dev")
    assert unusable.returncode == 2
    assert unusable.stderr.strip().count("\n") == 0 and "Traceback" not in unusable.stderr


def test_real_command_bad_pack_is_one_line_within_timeout(clean_export, test_packs):
    started = time.monotonic()
    result = _ps019("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                    "--policy-pack", _pack(test_packs, "no_port"), "--timeout", "2", timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "did not print its port" in result.stderr
    assert time.monotonic() - started < 15


# ---------------------------------------------------------------------------------------------------------- programs


@pytest.fixture
def tiny_program(tmp_path):
    program = tmp_path / "proj"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: proj\nruntime: python\n")
    (program / "__main__.py").write_text(
        "import pulumi\n"
        "color = pulumi.Config().require('color')\n"
        "pulumi.CustomResource('test:index:Thing', 'thing', {'color': color, 'forbidden': color == 'red'})\n")
    (program / "Pulumi.dev.yaml").write_text("config:\n  proj:color: blue\n")
    return program


def test_program_reads_its_stack_config_file_beside_it(run, tiny_program, test_packs):
    import hashlib

    code, out, err = run("analyze", "--program", tiny_program, "--stack", "acme/proj/dev",
                         "--policy-pack", _pack(test_packs, "probe"), "--format", "json")
    assert code == 0, err
    seen = _probe_seen(json.loads(out), "::thing")
    assert seen["hashes"]["color"] == hashlib.sha256(json.dumps("blue").encode()).hexdigest()
    # --config overrides the file; the pack blocks what the program now registers
    code, out, err = run("analyze", "--program", tiny_program, "--stack", "acme/proj/dev", "--config", "color=red",
                         "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json")
    assert code == 1, err
    assert [d["policy"] for d in json.loads(out)["passes"][0]["diagnostics"]] == ["no-forbidden"]


def test_program_that_fails_is_unusable_input(run, tiny_program):
    (tiny_program / "Pulumi.dev.yaml").unlink()  # config.require('color') now raises inside the program
    _assert_one_line_error(*run("analyze", "--program", tiny_program, "--stack", "acme/proj/dev"), "color")


def test_program_for_another_project(run, tiny_program):
    _assert_one_line_error(*run("analyze", "--program", tiny_program, "--stack", "acme/other/dev"), "proj")


def test_default_pack_can_be_relocated_with_an_environment_variable(run, clean_export, test_packs, monkeypatch):
    monkeypatch.setenv("PS019_POLICY_PACK", _pack(test_packs, "third_party"))
    code, out, _ = run("analyze", "--state", clean_export, "--stack", "acme/proj/dev", "--format", "json")
    assert code == 0
    assert json.loads(out)["passes"][0]["pack"]["name"] == "aws-python"


def test_unwritable_output_file(run, clean_export, test_packs, tmp_path):
    (tmp_path / "afile").write_text("")
    _assert_one_line_error(*run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                                "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json",
                                "-o", tmp_path / "afile" / "dir.json"), "cannot write")


def test_output_file_in_missing_directories_is_created(run, clean_export, test_packs, tmp_path):
    target = tmp_path / "no" / "such" / "dir.json"
    code, _, err = run("analyze", "--state", clean_export, "--stack", "acme/proj/dev",
                       "--policy-pack", _pack(test_packs, "mandatory"), "--format", "json", "-o", target)
    assert code in (0, 1), err
    assert json.loads(target.read_text())["stack"] == "acme/proj/dev"
