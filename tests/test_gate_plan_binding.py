"""An approval of a plan binds the resources the change touches, not just the plan file (issue 11, item 7b).

Attack (an insider with repo access and the deploy job, no approver's key): get plan A approved (`pulumi preview
--save-plan A`, `ps019 change-request new --plan-file A`, two approvals), then deploy a different program B with the
same commit while presenting plan A's file (`PS019_PLAN_FILE=A`, and `pulumi up` without `--plan`). Before, the gate
compared only the file's digest, so B went through under A's approvals. Now each analyzed resource must conform to the
plan (PS019-GATE-020): a resource outside it, a planned input with another value, or a change to a resource the plan
leaves unchanged (checked against its last recorded deployment) blocks the update on that resource.

Plans here are written in Pulumi's own file format (``apitype.DeploymentPlanV1``) from the example stack export.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ps019.controls.base import NotApplicable, RunContext
from ps019.engine import run_pass
from ps019.engine.values import Secret
from ps019.gate import change_request as crm
from ps019.gate.plan import PLAN_CONFORMANCE, PlanError, parse_plan, plan_violations
from ps019.model import UNKNOWN, ResourceView
from tests.test_gate_engine import COMMIT, KEYS, STACK, ci_env, export, issuer, pack_config  # noqa: F401 fixtures

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:abc"}
DB = "urn:pulumi:prod::web-service::aws:rds/instance:Instance::app-db"
WEB_SG = "urn:pulumi:prod::web-service::aws:ec2/securityGroup:SecurityGroup::web-sg"
FIXTURES = Path(importlib.import_module("ps019.controls.gate").__file__).parent / "fixtures" / "plan_conformance"


def _serialized(value):
    """An engine-side value as Pulumi writes it into a plan file (secrets encrypted: the pack cannot read them)."""
    if isinstance(value, Secret):
        return dict(SECRET_SIG)
    if isinstance(value, dict):
        return {k: _serialized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_serialized(v) for v in value]
    return value


def plan_doc(resources, steps: dict[str, dict] | None = None) -> dict:
    """A DeploymentPlanV1: every resource created with all its inputs, unless ``steps`` says otherwise for a URN
    (``{"steps": ["same"]}`` or ``{"steps": ["update"], "updates": {...}}``)."""
    plans = {}
    for res in resources:
        override = (steps or {}).get(res.urn)
        if override is None:
            diff = {"adds": _serialized(dict(res.inputs))}
            step = ["create"]
        else:
            diff = {k: v for k, v in override.items() if k != "steps"}
            step = override["steps"]
        plans[res.urn] = {"goal": {"type": res.type, "name": res.urn.rsplit("::", 1)[1], "custom": res.custom,
                                   "inputDiff": diff, "protect": False}, "steps": step, "state": {}}
    return {"manifest": {"time": "2026-12-03T10:00:00Z", "magic": "", "version": "v3.200.0"},
            "resourcePlans": plans}


def write_plan(tmp_path: Path, doc: dict, name: str = "plan.json") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=4))
    return path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def write_request(tmp_path: Path, plan_digest: str | None, name: str = "change.json") -> Path:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    artifact = {"git_commit": COMMIT, **({"plan_digest": plan_digest} if plan_digest else {})}
    request = crm.ChangeRequest.model_validate({
        "ticket": "CHG-7000", "change_class": "normal", "summary": "Resize the database", "owner": "team-web",
        "author": "carol@example.com", "artifact": artifact, "stacks": [STACK], "test_evidence": "https://ci/7",
        "rollback_plan": "https://wiki/rollback", "monitoring_plan": "https://wiki/monitoring",
        "created_at": (now - timedelta(hours=1)).isoformat(), "expires_at": (now + timedelta(days=1)).isoformat()})
    approvals = [crm.sign_approval(request, KEYS["carol"], approver="carol@example.com", role="author",
                                   signed_at=now - timedelta(minutes=20))]
    approvals += [crm.sign_approval(request, KEYS[n], approver=f"{n}@example.com", role="approver",
                                    signed_at=now - timedelta(minutes=10)) for n in ("alice", "bob")]
    path = tmp_path / name
    path.write_text(request.model_copy(update={"approvals": approvals}).model_dump_json())
    return path


def with_inputs(resources, urn: str, **changes):
    return [replace(r, inputs={**r.inputs, **changes}) if r.urn == urn else r for r in resources]


def deploy(ps019_pack, pack_pool, pack_config, monkeypatch, resources, request: Path, plan: Path | None):
    monkeypatch.setenv("PS019_CHANGE_REQUEST", str(request))
    if plan is None:
        monkeypatch.delenv("PS019_PLAN_FILE", raising=False)
    else:
        monkeypatch.setenv("PS019_PLAN_FILE", str(plan))
    return run_pass(ps019_pack, resources, stack=STACK, dry_run=False, policy_pack_config=pack_config,
                    pool=pack_pool)


def blocking(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in result.diagnostics:
        if d.mandatory:
            out.setdefault(d.policy_name, []).append(d.message)
    return out


# --- the attack, through the engine and the bundled pack ---------------------------------------------------------------


def test_plan_a_approved_then_program_b_deployed_with_plan_as_file_is_blocked(
        export, ps019_pack, pack_pool, pack_config, ci_env, tmp_path, monkeypatch):  # noqa: F811
    resources = list(export.resources)
    plan, digest = write_plan(tmp_path, plan_doc(resources))
    request = write_request(tmp_path, digest)

    honest = deploy(ps019_pack, pack_pool, pack_config, monkeypatch, resources, request, plan)
    assert blocking(honest) == {}, blocking(honest)
    assert len(honest.analyzed_urns) == len(resources)

    # B: the same commit, one planned input changed after approval (a bigger, costlier database)
    resized = with_inputs(resources, DB, instanceClass="db.r5.24xlarge")
    attack = deploy(ps019_pack, pack_pool, pack_config, monkeypatch, resized, request, plan)
    found = blocking(attack)
    assert list(found) == [PLAN_CONFORMANCE], found
    [message] = found[PLAN_CONFORMANCE]
    assert f"{DB}: input(s) instanceClass differ from the approved plan; change request CHG-7000 approves plan " \
           f"{digest}" in message and "Fix:" in message
    assert "db.r5.24xlarge" not in message  # values are never shown (they may be secrets)
    assert attack.blocked_at == DB

    # B': a resource nobody approved, added to the program
    extra_urn = "urn:pulumi:prod::web-service::aws:ec2/securityGroup:SecurityGroup::debug-sg"
    web_sg = next(r for r in resources if r.urn == WEB_SG)
    added = resources + [replace(web_sg, urn=extra_urn, id="sg-debug")]
    sneaked = deploy(ps019_pack, pack_pool, pack_config, monkeypatch, added, request, plan)
    assert any(f"{extra_urn} is not in the approved plan ({len(resources)} resources)" in m
               for m in blocking(sneaked).get(PLAN_CONFORMANCE, [])), blocking(sneaked)
    assert sneaked.blocked_at == extra_urn


def test_a_resource_the_plan_leaves_unchanged_keeps_its_last_recorded_inputs(
        export, ps019_pack, pack_pool, pack_config, ci_env, tmp_path, monkeypatch):  # noqa: F811
    resources = list(export.resources)
    first = deploy(ps019_pack, pack_pool, pack_config, monkeypatch, resources, write_request(tmp_path, None, "v1.json"),
                   None)
    assert blocking(first) == {}, blocking(first)  # recorded: every resource's inputs digest

    # plan C: only the database changes; everything else is planned unchanged ("same")
    steps = {r.urn: {"steps": ["same"]} for r in resources}
    steps[DB] = {"steps": ["update"], "updates": {"instanceClass": "db.t3.large"}}
    plan, digest = write_plan(tmp_path, plan_doc(resources, steps), "plan-c.json")
    request = write_request(tmp_path, digest, "v2.json")
    resized = with_inputs(resources, DB, instanceClass="db.t3.large")
    honest = deploy(ps019_pack, pack_pool, pack_config, monkeypatch, resized, request, plan)
    assert blocking(honest) == {}, blocking(honest)

    # the deployer also opens up a security group the plan leaves alone
    opened = with_inputs(resized, WEB_SG, description="temporarily open for debugging")
    attack = deploy(ps019_pack, pack_pool, pack_config, monkeypatch, opened, request, plan)
    assert [m for m in blocking(attack).get(PLAN_CONFORMANCE, [])
            if f"{WEB_SG}: the approved plan leaves it unchanged, but its inputs differ from its last recorded "
               "deployment" in m], blocking(attack)
    assert attack.blocked_at == WEB_SG


def test_a_plan_file_that_is_not_a_usable_plan_blocks_with_one_line(
        export, ps019_pack, pack_pool, pack_config, ci_env, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "garbage.json"
    path.write_bytes(b'{"manifest": {}, "resourcePlans": {"a": {}, "a": {}}}')
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    result = deploy(ps019_pack, pack_pool, pack_config, monkeypatch, list(export.resources),
                    write_request(tmp_path, digest), path)
    messages = " | ".join(blocking(result).get("PS019-GATE-001", []))
    assert f"the approved plan file {digest} is not a usable Pulumi plan: duplicate key 'a'" in messages
    assert result.analyzed_urns == [export.resources[0].urn]


# --- the comparison itself ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, reason", [
    (b"\xff\xfe", "not UTF-8 text"),
    (b"not json", "not JSON"),
    (b"[]", "no manifest object"),
    (b'{"manifest": {}, "resourcePlans": []}', "resourcePlans is not an object"),
    (b'{"manifest": {}, "resourcePlans": {"u": {"steps": "create"}}}', "steps is not a list"),
    (b'{"manifest": {}, "resourcePlans": {"u": {"goal": {"name": "x"}}}}', "goal has no type"),
    (b'{"manifest": {}, "resourcePlans": {"u": {"goal": {"type": "t", "inputDiff": {"adds": []}}}}}',
     "inputDiff is malformed"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_unusable_plan_files_are_refused_with_the_reason(data, reason):
    with pytest.raises(PlanError, match=reason):
        parse_plan(data, "sha256:x")


def view(urn=DB, type_="aws:rds/instance:Instance", **props) -> ResourceView:
    return ResourceView(urn=urn, type=type_, name=urn.rsplit("::", 1)[1], props=props)


def decision_for(doc: dict, enforcement: str = "mandatory"):
    from types import SimpleNamespace

    plan = parse_plan(json.dumps(doc).encode(), "sha256:p")
    return SimpleNamespace(bound_plan=plan, enforcement=enforcement, tier_note="",
                           presented={"change_request": {"ticket": "CHG-1"}})


def replace_plan(decision, plan):
    decision.bound_plan = plan
    return decision


def goal(adds=None, updates=None, deletes=None, steps=("create",), type_="aws:rds/instance:Instance") -> dict:
    diff = {k: v for k, v in (("adds", adds), ("updates", updates), ("deletes", deletes)) if v is not None}
    return {"goal": {"type": type_, "name": "app-db", "custom": True, "inputDiff": diff}, "steps": list(steps)}


def problems(doc, resource, applied=None, enforcement="mandatory") -> list[str]:
    return [v.message for v in plan_violations(decision_for(doc, enforcement), resource, applied)]


def test_unknowns_secrets_and_numbers_conform_as_pulumi_would_accept_them():
    doc = plan_doc([])
    doc["resourcePlans"][DB] = goal(adds={"allocatedStorage": 20, "password": SECRET_SIG,
                                          "subnet": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
                                          "tags": {"team": "web"}})
    assert problems(doc, view(allocatedStorage=20.0, password="s3cret", subnet="subnet-1", tags={"team": "web"})) == []
    assert problems(doc, view(allocatedStorage=UNKNOWN, password="x", subnet="y", tags={"team": "web"})) == []
    wrong = problems(doc, view(allocatedStorage=20.0, password="x", subnet="y", tags={"team": "web", "extra": "1"}))
    assert len(wrong) == 1 and "input(s) tags differ" in wrong[0]
    extra = problems(doc, view(allocatedStorage=20.0, password="x", subnet="y", tags={"team": "web"}, public=True))
    assert len(extra) == 1 and "input(s) public are not in the approved plan's create" in extra[0]


def test_an_update_checks_what_it_changes_and_what_it_removes():
    doc = plan_doc([])
    doc["resourcePlans"][DB] = goal(updates={"instanceClass": "db.t3.large"}, deletes=["iops"], steps=("update",))
    assert problems(doc, view(instanceClass="db.t3.large", allocatedStorage=50)) == []
    assert "instanceClass differ" in problems(doc, view(instanceClass="db.t3.micro"))[0]
    assert "removes input(s) iops" in problems(doc, view(instanceClass="db.t3.large", iops=3000))[0]


def test_the_type_a_planned_delete_and_the_stores_answer_are_checked():
    doc = plan_doc([])
    doc["resourcePlans"][DB] = goal(adds={}, type_="aws:rds/cluster:Cluster")
    assert "the approved plan has type aws:rds/cluster:Cluster" in problems(doc, view())[0]
    doc["resourcePlans"][DB] = {"steps": ["delete"]}
    assert "the approved plan deletes it" in problems(doc, view())[0]
    doc["resourcePlans"][DB] = goal(steps=("same",))
    resource = view(instanceClass="db.t3.micro")
    from ps019.digest import inputs_digest

    assert problems(doc, resource, {DB: inputs_digest(resource.props)}) == []
    assert "its inputs differ from its last recorded deployment" in problems(doc, resource, {DB: "0" * 64})[0]
    assert "no earlier update record in the evidence store holds its inputs" in problems(doc, resource, {})[0]
    assert "cannot be read (evidence store read failed: OperationalError)" in problems(
        doc, resource, "evidence store read failed: OperationalError")[0]


def test_advisory_tiers_report_without_blocking_and_no_plan_means_not_applicable():
    from ps019.controls.gate.plan_conformance import CONTROL

    doc = plan_doc([])
    [violation] = plan_violations(decision_for(doc, "advisory"), view(), None)
    assert violation.details == {"advisory": True}
    unbound = replace_plan(decision_for(doc), None)
    with pytest.raises(NotApplicable, match="no approved plan is bound"):
        CONTROL.check(view(), RunContext(organization="acme", project="web", stack="prod", dry_run=False,
                                         tier="production", gate=unbound), CONTROL.params({}))


def fixture_cases():
    for path in sorted(FIXTURES.glob("*/*.json")):
        yield pytest.param(path, id=f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("path", list(fixture_cases()))
def test_fixture(path):
    """sdk/ps019/controls/gate/fixtures/plan_conformance: {plan, resource, applied?} -> allowed or the messages."""
    from types import SimpleNamespace

    from ps019.controls.gate.plan_conformance import CONTROL

    case = json.loads(path.read_text())
    res = case["resource"]
    resource = ResourceView(urn=res["urn"], type=res["type"], name=res["urn"].rsplit("::", 1)[1],
                            props=res.get("props", {}))
    ctx = RunContext(organization="acme", project="web", stack="prod", dry_run=False, tier="production",
                     gate=decision_for(case["plan"]), history=SimpleNamespace(applied_inputs=case.get("applied")))
    found = [v.message for v in CONTROL.check(resource, ctx, CONTROL.params({}))]
    if path.parent.name == "allow":
        assert found == [], (case["description"], found)
    else:
        assert found, case["description"]
        for fragment in case["message_contains"]:
            assert any(fragment in m for m in found), (fragment, found)


def test_the_control_has_allow_and_deny_fixtures():
    assert list((FIXTURES / "allow").glob("*.json")) and list((FIXTURES / "deny").glob("*.json"))
