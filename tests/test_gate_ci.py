"""CI facts, artifact commit, plan digest and the change-request loader (the gate's edges)."""

from __future__ import annotations

import hashlib

from ps019.controls.base import RunContext
from ps019.controls.registry import get
from ps019.gate import change_request as crm
from ps019.gate.ci import artifact_commit, detect_ci, plan_digest_from_env
from ps019.gate.decision import GATE_CONTROL_IDS, GateInputs, decide_gate
from ps019.gate.edges import deployer_from
from ps019.gate.settings import GateSettings
from ps019.model import ResourceView

SHA = "1" * 40


def test_github_actions_facts():
    ci = detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": SHA, "GITHUB_ACTOR": "dev",
                    "GITHUB_REPOSITORY": "acme/web", "GITHUB_RUN_ID": "7", "GITHUB_REF_PROTECTED": "true"})
    assert (ci.provider, ci.ref, ci.commit, ci.actor, ci.protected) == ("github", "refs/heads/main", SHA, "dev", True)
    assert ci.run_url == "https://github.com/acme/web/actions/runs/7"


def test_gitlab_branch_becomes_a_ref():
    ci = detect_ci({"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_SHA": SHA,
                    "CI_COMMIT_REF_PROTECTED": "true"})
    assert ci.provider == "gitlab" and ci.ref == "refs/heads/main" and ci.protected is True


def test_no_ci_and_generic_ci():
    assert detect_ci({}) is None
    assert detect_ci({"CI": "true"}).provider == "generic"


def test_artifact_commit_sources_and_conflict():
    ci = detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_SHA": SHA})
    assert artifact_commit({}, ci).commit == SHA
    assert artifact_commit({"PS019_GIT_COMMIT": "2" * 40}, None).commit == "2" * 40
    conflict = artifact_commit({"PS019_GIT_COMMIT": "2" * 40}, ci)
    assert "disagrees with the CI commit" in conflict.problem
    assert "not a full git commit SHA" in artifact_commit({"PS019_GIT_COMMIT": "abc"}, None).problem


def test_plan_digest(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_bytes(b'{"plan": 1}')
    facts = plan_digest_from_env({"PS019_PLAN_FILE": str(plan)})
    assert facts.digest == "sha256:" + hashlib.sha256(b'{"plan": 1}').hexdigest()
    assert "no such file" in plan_digest_from_env({"PS019_PLAN_FILE": str(tmp_path / "x")}).problem


def test_loader_precedence_relative_paths_and_errors(tmp_path):
    (tmp_path / "cr.json").write_text("{}")
    src = crm.load_change_request({"PS019_CHANGE_REQUEST": "cr.json", "PWD": str(tmp_path)},
                                  {"ps019:changeRequest": "/elsewhere.json"})
    assert src.origin == "env PS019_CHANGE_REQUEST" and src.data == b"{}"
    src = crm.load_change_request({"PWD": str(tmp_path)}, {"ps019:changeRequest": "cr.json"})
    assert src.origin == "stack config ps019:changeRequest" and src.data == b"{}"
    assert crm.load_change_request({}, {}).presented is False
    assert "is a directory" in crm.load_change_request({"PS019_CHANGE_REQUEST": str(tmp_path)}, {}).error
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (crm.MAX_FILE_BYTES + 1))
    assert "over the" in crm.load_change_request({"PS019_CHANGE_REQUEST": str(big)}, {}).error


def test_deployer_precedence():
    assert deployer_from("arn:aws:sts::1:assumed-role/D/x", "dev", {}).verified_by == "sts"
    assert deployer_from(None, "dev", {}).verified_by == "ci"
    assert deployer_from(None, None, {"USER": "me"}) .verified_by == "local-user"


def _ctx(gate) -> RunContext:
    return RunContext(organization="acme", project="web", stack="prod", dry_run=False, tier="production", gate=gate)


STACK_VIEW = ResourceView(urn="urn:pulumi:prod::web::pulumi:pulumi:Stack::web-prod", type="pulumi:pulumi:Stack",
                          name="web-prod", props={}, custom=False)


def test_gate_controls_report_the_decision_on_the_root_stack():
    from datetime import datetime, timezone

    decision = decide_gate(GateInputs(stack_ref="acme/web/prod", tier="production", tier_source="t",
                                      now=datetime.now(timezone.utc)), GateSettings())
    for control_id in GATE_CONTROL_IDS:
        control = get(control_id)
        if control.scope != "resource":
            continue  # the escalation rule runs over findings, see test_gate_controls
        assert control.resource_types is None  # every type: reported on the run's first analyzed resource
        found = list(control.check(STACK_VIEW, _ctx(decision), {}))
        assert [v.message for v in found] == [v.message for v in decision.violations[control_id]]
        assert all(v.urn == STACK_VIEW.urn for v in found)


def test_missing_decision_fails_closed_once():
    assert "failing closed" in list(get("PS019-GATE-001").check(STACK_VIEW, _ctx(None), {}))[0].message
    assert list(get("PS019-GATE-002").check(STACK_VIEW, _ctx(None), {})) == []
