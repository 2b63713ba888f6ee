"""The output formatters are pure functions of one report: the same facts in table, JSON and SARIF 2.1.0."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from ps019.engine import EngineDiagnostic, PassResult, PolicyInfo, StackRef
from ps019.model import Level, Severity
from ps019.output import SCHEMA_VERSION, build_report, build_sarif, render_json, render_sarif, render_table

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
STACK = StackRef.parse("acme/web/prod")
ROOT_URN = "urn:pulumi:prod::web::pulumi:pulumi:Stack::web-prod"
ROLE_URN = "urn:pulumi:prod::web::aws:iam/role:Role::deploy"
BUCKET_URN = "urn:pulumi:prod::web::acme:web:Assets$aws:s3/bucket:Bucket::assets"


def _diag(urn, rtype, policy, level, message, severity=Severity.HIGH, phase="analyze"):
    return EngineDiagnostic(urn=urn, resource_type=rtype, policy_name=policy, pack="ps019", pack_version="0.1.0",
                            level=level, severity=severity, message=message, phase=phase)


def _pass(dry_run=True, diagnostics=(), blocked_at=None, stack_analyzed=True, analyzed=(ROOT_URN, ROLE_URN,
                                                                                           BUCKET_URN)):
    policies = [PolicyInfo("PS019-IAM-002", "IAM role trust policies name who may assume the role",
                           Level.MANDATORY, Severity.CRITICAL, "resource"),
                PolicyInfo("PS019-GATE-001", "Production changes present a valid change request", Level.MANDATORY,
                           Severity.HIGH, "resource"),
                PolicyInfo("tagging", "Resources carry an owner tag", Level.ADVISORY, None, "resource")]
    return PassResult("ps019", "0.1.0", STACK, dry_run, policies, diagnostics=list(diagnostics),
                      analyzed_urns=list(analyzed), blocked_at=blocked_at, stack_analyzed=stack_analyzed)


PREVIEW = _pass(diagnostics=[
    _diag(BUCKET_URN, "aws:s3/bucket:Bucket", "tagging", Level.ADVISORY, "Resources carry an owner tag\nno owner",
          severity=None),
    _diag(ROOT_URN, "pulumi:pulumi:Stack", "PS019-GATE-001", Level.MANDATORY,
          "Production changes present a valid change request\nno change request presented"),
    _diag(ROLE_URN, "aws:iam/role:Role", "PS019-IAM-002", Level.MANDATORY,
          "IAM role trust policies name who may assume the role\ntrusts any AWS principal", Severity.CRITICAL),
    _diag(ROOT_URN, "pulumi:pulumi:Stack", "no-such-policy-in-info", Level.ADVISORY, "stack-level finding",
          severity=None, phase="analyze_stack"),
])
CONTROLS = {"PS019-IAM-002": {"title": "IAM role trust policies name who may assume the role",
                              "clause": "PS-019 §3 least privilege", "rationale": "why", "remediation": "fix it",
                              "severity": "critical"}}


def _report(passes=(("preview", PREVIEW),), **kwargs):
    defaults = dict(command="analyze", stack="acme/web/prod", source_kind="state", source_path="exports/prod.json",
                    controls=CONTROLS)
    defaults.update(kwargs)
    return build_report(list(passes), **defaults)


def _table(report) -> str:
    buffer = io.StringIO()
    render_table(report, Console(file=buffer, width=160, color_system=None))
    return buffer.getvalue()


def test_report_counts_and_verdict():
    report = _report()
    assert report["schema_version"] == SCHEMA_VERSION == 1
    (p,) = report["passes"]
    assert p["counts"] == {"mandatory": 2, "advisory": 2}
    assert report["result"] == "failed" and report["exit_code"] == 1
    assert list(report["controls"]) == ["PS019-IAM-002"]  # only controls that are among the pack's policies
    clean = _report(passes=[("preview", _pass())])
    assert clean["result"] == "passed" and clean["exit_code"] == 0 and clean["passes"][0]["diagnostics"] == []


def test_remediate_level_counts_as_mandatory():
    report = _report(passes=[("preview", _pass(diagnostics=[
        _diag(ROLE_URN, "aws:iam/role:Role", "PS019-IAM-002", Level.REMEDIATE, "x")]))])
    assert report["passes"][0]["counts"]["mandatory"] == 1 and report["exit_code"] == 1
    assert build_sarif(report)["runs"][0]["results"][0]["level"] == "error"


def test_json_keys_sorted_and_round_trip():
    text = render_json(_report())
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert json.loads(text)["passes"][0]["diagnostics"][1]["policy"] == "PS019-GATE-001"  # run order kept


def test_table_groups_by_resource_in_analysis_order_with_summary():
    out = _table(_report())
    # resources appear in the order the engine analyzed them, each once, with all of its diagnostics
    assert out.index("web-prod") < out.index("deploy") < out.index("assets")
    assert out.count("web-prod") == 1
    assert "preview: 3 resources analyzed · 2 mandatory · 2 advisory · stack policies ran · FAILED" in out
    assert "PS019-IAM-002: IAM role trust policies name who may assume the role (PS-019 §3 least privilege)" in out


def test_table_for_a_blocked_update_and_a_skipped_pass():
    update = _pass(dry_run=False, blocked_at=ROLE_URN, stack_analyzed=False, analyzed=(ROOT_URN, ROLE_URN),
                   diagnostics=[_diag(ROLE_URN, "aws:iam/role:Role", "PS019-IAM-002", Level.MANDATORY, "m")])
    out = _table(_report(passes=[("update", update)], skipped=[{"phase": "update", "reason": "because"}]))
    assert f"blocked at {ROLE_URN}" in out and "stack policies did not run" in out
    assert "update: not run: because" in out


def test_table_markup_in_messages_is_not_interpreted():
    report = _report(passes=[("preview", _pass(diagnostics=[
        _diag(ROLE_URN, "aws:iam/role:Role", "PS019-IAM-002", Level.MANDATORY, "[bold]literal[/bold] [red]")]))])
    assert "[bold]literal[/bold] [red]" in _table(report)


@pytest.mark.parametrize("path", ["exports/prod.json", "/abs/dir with space/prod.json", ""])
def test_sarif_validates_with_rules_results_and_logical_locations(path):
    sarif = build_sarif(_report(source_path=path))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["PS019-IAM-002", "PS019-GATE-001", "tagging", "no-such-policy-in-info"]
    iam = rules[0]
    assert iam["defaultConfiguration"]["level"] == "error"
    assert "Standard: PS-019 §3 least privilege" in iam["help"]["text"] and "Fix: fix it" in iam["help"]["text"]
    assert iam["properties"]["security-severity"] == "9.5"
    assert rules[2]["defaultConfiguration"]["level"] == "warning"
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("tagging", "warning"), ("PS019-GATE-001", "error"), ("PS019-IAM-002", "error"),
        ("no-such-policy-in-info", "warning")]
    for result in results:
        (logical,) = result["locations"][0]["logicalLocations"]
        assert run["logicalLocations"][logical["index"]]["fullyQualifiedName"] == logical["fullyQualifiedName"]
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        if path:
            assert "physicalLocation" in result["locations"][0]
    assert results[0]["locations"][0]["logicalLocations"][0]["name"] == "assets"
    if path.startswith("/"):
        assert run["artifacts"][0]["location"]["uri"] == "file:///abs/dir%20with%20space/prod.json"


def test_sarif_has_one_run_per_pass_and_stable_fingerprints():
    update = _pass(dry_run=False, blocked_at=ROOT_URN, stack_analyzed=False, analyzed=(ROOT_URN,), diagnostics=[
        _diag(ROOT_URN, "pulumi:pulumi:Stack", "PS019-GATE-001", Level.MANDATORY, "no change request")])
    sarif = json.loads(render_sarif(_report(passes=[("preview", PREVIEW), ("update", update)], command="up")))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    preview_run, update_run = sarif["runs"]
    assert update_run["invocations"][0]["properties"]["blockedAt"] == ROOT_URN
    assert preview_run["automationDetails"]["id"] != update_run["automationDetails"]["id"]
    gate = [r for r in preview_run["results"] if r["ruleId"] == "PS019-GATE-001"][0]
    assert gate["partialFingerprints"] == update_run["results"][0]["partialFingerprints"]


def test_formatters_accept_a_saved_json_report():
    saved = json.loads(render_json(_report()))
    assert build_sarif(saved) == build_sarif(_report())
    assert "PS019-IAM-002" in _table(saved)


def test_sarif_points_program_results_at_the_project_file():
    sarif = build_sarif(_report(source_kind="program", source_path="examples/web-service"))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    location = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "examples/web-service/Pulumi.yaml"}
