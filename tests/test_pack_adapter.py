"""The bundled ps019 pack, driven through the engine stand-in over gRPC exactly as `pulumi preview`/`up` would."""

from __future__ import annotations

import json

import pytest

from ps019.controls.registry import all_controls
from ps019.engine import EngineResource, Secret, StackRef, run_pass, run_up
from ps019.model import Level

SECRET = "s3cr3t-db-password-7f1e"


def stack_resources(stack: StackRef, *, bucket_policy: str | None = None) -> list[EngineResource]:
    root = stack.root_urn
    provider = f"urn:pulumi:{stack.stack}::{stack.project}::pulumi:providers:aws::default_7_0_0"
    db = f"urn:pulumi:{stack.stack}::{stack.project}::aws:rds/instance:Instance::db"
    role = f"urn:pulumi:{stack.stack}::{stack.project}::aws:iam/rolePolicy:RolePolicy::app"
    doc = bucket_policy or json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::app-assets/*"}]})
    return [
        EngineResource(urn=root, type="pulumi:pulumi:Stack", custom=False),
        EngineResource(urn=provider, type="pulumi:providers:aws", id="p1", inputs={"region": "us-east-1"},
                       outputs={"region": "us-east-1"}),
        EngineResource(urn=db, type="aws:rds/instance:Instance", id="db-1", parent=root, provider=provider,
                       inputs={"engine": "postgres", "password": Secret(SECRET), "allocatedStorage": 20},
                       outputs={"engine": "postgres", "password": Secret(SECRET)}),
        EngineResource(urn=role, type="aws:iam/rolePolicy:RolePolicy", id="r-1", parent=root, provider=provider,
                       inputs={"role": "app", "policy": doc}, outputs={"role": "app", "policy": doc}),
    ]


def by_policy(result, policy_name):
    return [d for d in result.diagnostics if d.policy_name == policy_name]


def test_every_registered_control_is_a_policy_of_the_pack(ps019_pack, pack_pool):
    stack = StackRef.parse("acme/adapter/dev")
    result = run_pass(ps019_pack, stack_resources(stack), stack=stack, dry_run=True, pool=pack_pool)
    listed = {p.name: p for p in result.policies}
    assert set(listed) == {c.id for c in all_controls()} | {"ps019-settings"}
    for control in all_controls():
        assert listed[control.id].level == control.level
        assert listed[control.id].severity.value == control.severity.value
        assert listed[control.id].kind == ("stack" if control.scope == "stack" else "resource")
    assert result.pack_name == "ps019" and result.pack_version == "0.1.0"


def test_production_stack_without_change_request_is_blocked_at_the_root_before_any_other_resource(
        ps019_pack, pack_pool, evidence_store):
    stack = StackRef.parse("acme/adapter-block/prod")
    resources = stack_resources(stack)
    result = run_pass(ps019_pack, resources, stack=stack, dry_run=False, pool=pack_pool)
    gate = by_policy(result, "PS019-GATE-001")
    assert gate and gate[0].level is Level.MANDATORY and gate[0].urn == stack.root_urn
    assert "no change request presented" in gate[0].message
    # The engine stops the update at the root stack resource: nothing else is analyzed, no AnalyzeStack.
    assert result.blocked_at == stack.root_urn
    assert result.analyzed_urns == [stack.root_urn]
    assert not result.stack_analyzed
    # ... and the pack left a blocked record naming why.
    records = [s.record for s in evidence_store.query(stack=str(stack), kind="blocked")]
    assert records, "no blocked record"
    assert records[-1].outcome == "blocked" and "PS019-GATE-001" in records[-1].blocked_reason
    assert records[-1].environment == "production"


def test_preview_reports_everything_and_the_record_keeps_every_result(ps019_pack, pack_pool, evidence_store):
    stack = StackRef.parse("acme/adapter-preview/prod")
    result = run_pass(ps019_pack, stack_resources(stack), stack=stack, dry_run=True, pool=pack_pool)
    assert result.failed and result.blocked_at is None and result.stack_analyzed
    assert len(result.analyzed_urns) == 4
    record = [s.record for s in evidence_store.query(stack=str(stack), kind="preview")][-1]
    assert {p.control_id for p in record.policy_results} >= {"PS019-GATE-001", "PS019-GATE-004"}
    assert [r.urn for r in record.resources] == [r.urn for r in stack_resources(stack)]
    assert record.artifact.policy_pack.name == "ps019" and record.artifact.policy_pack.code_digest
    # The secret database password never reaches the record, not even as a plain hash of itself.
    raw = json.dumps(record.document())
    assert SECRET not in raw


def test_policy_pack_config_sets_levels_per_control(ps019_pack, pack_pool):
    stack = StackRef.parse("acme/adapter-levels/prod")
    config = {"PS019-GATE-001": "advisory", "PS019-GATE-004": {"enforcementLevel": "disabled"}}
    result = run_pass(ps019_pack, stack_resources(stack), stack=stack, dry_run=True, pool=pack_pool,
                      policy_pack_config=config)
    assert all(d.level is Level.ADVISORY for d in by_policy(result, "PS019-GATE-001"))
    assert not by_policy(result, "PS019-GATE-004")


def test_invalid_settings_fail_closed_with_the_field_named(ps019_pack, pack_pool):
    stack = StackRef.parse("acme/adapter-settings/dev")
    config = {"ps019-settings": {"environments": {"unknown_treated_as": "nowhere"}, "bogus": {}}}
    result = run_pass(ps019_pack, stack_resources(stack), stack=stack, dry_run=True, pool=pack_pool,
                      policy_pack_config=config)
    found = by_policy(result, "PS019-PACK-001")
    messages = " | ".join(d.message for d in found)
    assert found and all(d.level is Level.MANDATORY for d in found)
    assert "ps019-settings.environments" in messages and "unknown_treated_as" in messages
    assert "unknown section 'bogus'" in messages
    assert not by_policy(result, "PS019-PACK-000")


def test_over_privileged_policy_is_blocked_in_update_before_creation_and_reported_in_preview(
        ps019_pack, pack_pool):
    stack = StackRef.parse("acme/adapter-iam/dev")
    admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    resources = stack_resources(stack, bucket_policy=admin)
    preview = run_pass(ps019_pack, resources, stack=stack, dry_run=True, pool=pack_pool)
    iam = [d for d in preview.diagnostics if d.policy_name.startswith("PS019-IAM") and d.urn == resources[3].urn]
    assert iam and any(d.level is Level.MANDATORY for d in iam)
    update = run_pass(ps019_pack, resources, stack=stack, dry_run=False, pool=pack_pool)
    assert update.blocked_at == resources[3].urn
    assert not update.stack_analyzed


def test_up_links_the_update_record_to_its_preview(ps019_pack, evidence_store):
    stack = StackRef.parse("acme/adapter-up/dev")
    up = run_up(ps019_pack, stack_resources(stack), stack=stack)
    assert up.preview is not None and up.update is not None and not up.failed
    preview = [s.record for s in evidence_store.query(stack=str(stack), kind="preview")][-1]
    update = [s.record for s in evidence_store.query(stack=str(stack), kind="update")][-1]
    assert update.links.get("preview_record_id") == preview.record_id
    assert update.sequence == preview.sequence + 1 and update.prev_hash == preview.hash


def test_decision_log_goes_where_the_pack_config_says_as_json_lines_without_secrets(ps019_pack, pack_pool, tmp_path):
    stack = StackRef.parse("acme/adapter-log/prod")
    log_file = tmp_path / "decisions.jsonl"
    config = {"ps019-settings": {"log": {"file": str(log_file), "level": "info"}}}
    result = run_pass(ps019_pack, stack_resources(stack), stack=stack, dry_run=True, pool=pack_pool,
                      policy_pack_config=config)
    assert result.stack_analyzed
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    facts = [e for e in lines if e.get("event") == "run_facts" and e.get("stack") == str(stack)]
    assert facts and facts[-1]["tier"] == "production" and facts[-1]["gate"] == "blocked"
    assert any(e.get("event") == "evidence_written" for e in lines)
    assert SECRET not in log_file.read_text()
    assert not [line for line in result.pack_output if line.strip()]  # nothing on the engine's stdout channel
