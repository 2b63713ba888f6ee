"""Every attempt leaves a record (issue #10, "Every attempt leaves a record"), through the engine stand-in over gRPC.

Each test is an attack or fault that, before this work, left nothing in the evidence store or the spool:
- a change request that crashes the gate (PS019-PACK-000): the update was blocked, but no record was written;
- one invalid UTF-8 byte in a CI variable (GITHUB_RUN_ID) made the record uncanonicalisable: nothing stored or
  spooled while the update went ahead;
- an update the engine cancels (the Analyzer ``Cancel`` call, then SIGINT) or kills: nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2

from ps019.engine import EngineResource, StackRef, run_pass
from ps019.engine.pack_process import PackProcess, choose_interpreter, read_pack_project
from ps019.engine.policy_config import load_policy_pack_config, reconcile, to_configure_request
from ps019.engine.runner import pack_environment
from ps019.engine.values import marshal_properties


def resources(stack: StackRef, n: int = 2) -> list[EngineResource]:
    root = stack.root_urn
    out = [EngineResource(urn=root, type="pulumi:pulumi:Stack", custom=False)]
    for i in range(n):
        out.append(EngineResource(
            urn=f"urn:pulumi:{stack.stack}::{stack.project}::aws:s3/bucket:Bucket::b{i}", type="aws:s3/bucket:Bucket",
            id=f"b{i}", parent=root, inputs={"bucket": f"b{i}", "acl": "private"}, outputs={"bucket": f"b{i}"}))
    return out


def records_of(store, stack: StackRef, **filters):
    return [s.record for s in store.query(stack=str(stack), **filters)]


def _clean_ci(monkeypatch):
    for var in ("GITHUB_ACTIONS", "CI", "GITLAB_CI", "GITHUB_RUN_ID", "GITHUB_REPOSITORY", "PS019_CHANGE_REQUEST",
                "PS019_BREAK_GLASS_GRANT"):
        monkeypatch.delenv(var, raising=False)


# --- gate crash ---------------------------------------------------------------------------------------------------


def test_a_change_request_that_crashes_the_gate_blocks_the_update_and_leaves_a_blocked_record(
        ps019_pack, evidence_store, tmp_path, monkeypatch):
    _clean_ci(monkeypatch)
    crash = tmp_path / "crash.json"
    crash.write_text("[" * 100_000)  # nesting beyond the parser's recursion limit
    monkeypatch.setenv("PS019_CHANGE_REQUEST", str(crash))
    stack = StackRef.parse("acme/completeness-crash/prod")
    result = run_pass(ps019_pack, resources(stack), stack=stack, dry_run=False)
    assert result.blocked_at == stack.root_urn and not result.stack_analyzed
    records = records_of(evidence_store, stack)
    assert [r.kind.value for r in records] == ["blocked"], "the attempt left no record"
    record = records[0]
    assert record.outcome == "blocked" and record.environment == "production"
    if any(p.control_id == "PS019-PACK-000" for p in record.policy_results):  # the gate still crashes on this input
        assert "PS019-PACK-000" in record.blocked_reason
        assert record.recording is not None and record.recording.internal_errors


def test_an_internal_error_in_every_call_still_leaves_one_record_per_pass(test_packs, evidence_store, monkeypatch):
    """A pack whose fact gathering always raises (tests/packs/ps019_crashing): the preview records the failures at
    AnalyzeStack; the update is blocked at its first resource with a blocked record; the tier is still known."""
    _clean_ci(monkeypatch)
    stack = StackRef.parse("acme/completeness-crash2/prod")
    preview = run_pass(test_packs / "ps019_crashing", resources(stack), stack=stack, dry_run=True)
    assert preview.failed and preview.stack_analyzed
    assert all(d.policy_name == "PS019-PACK-000" for d in preview.mandatory)
    update = run_pass(test_packs / "ps019_crashing", resources(stack), stack=stack, dry_run=False)
    assert update.blocked_at == stack.root_urn
    by_kind = {r.kind.value: r for r in records_of(evidence_store, stack)}
    assert set(by_kind) == {"preview", "blocked"}
    assert by_kind["preview"].outcome == "failed" and len(by_kind["preview"].resources) == 3
    assert by_kind["blocked"].environment == "production"
    for record in by_kind.values():
        assert any("fact gathering crashed" in e for e in record.recording.internal_errors)


# --- invalid UTF-8 in a CI variable -------------------------------------------------------------------------------


def test_an_invalid_utf8_byte_in_github_run_id_is_recorded_escaped_and_marked(ps019_pack, evidence_store,
                                                                              monkeypatch):
    _clean_ci(monkeypatch)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/web")
    monkeypatch.setenv("GITHUB_RUN_ID", "1234\udcff5")  # the byte 0xff, as Python sees an invalid UTF-8 byte
    stack = StackRef.parse("acme/completeness-utf8/dev")
    result = run_pass(ps019_pack, resources(stack), stack=stack, dry_run=False)
    assert result.stack_analyzed
    assert not [d for d in result.diagnostics if d.policy_name == "PS019-EVID-001"]
    [stored] = evidence_store.query(stack=str(stack), kind="update")
    doc = stored.document
    assert doc["ci"]["run_url"] == "https://github.com/acme/web/actions/runs/1234\\udcff5"
    marks = {m["path"]: m for m in doc["escaped"]}
    assert "/ci/run_url" in marks  # also where the gate's decision quotes the CI run
    assert all(m["reason"] == "invalid UTF-8 byte(s) 0xff" and m["encoding"] == "json-string" for m in marks.values())


# --- Cancel -------------------------------------------------------------------------------------------------------


class PartialPass:
    """The engine's calls one by one, so a test can cancel an update half-way (as Ctrl-C or a failed step does)."""

    def __init__(self, pack_dir: Path, stack: StackRef, dry_run: bool, policy_pack_config=None) -> None:
        project = read_pack_project(pack_dir)
        env = pack_environment(stack, dry_run, {})
        self.process = PackProcess(project, choose_interpreter(project, env), env, 60.0)
        self.stack, self.dry_run = stack, dry_run
        self.call("ConfigureStack", analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=stack.stack, project=stack.project, organization=stack.organization, dry_run=dry_run))
        info = self.call("GetAnalyzerInfo", empty_pb2.Empty())
        config = reconcile(info, load_policy_pack_config(policy_pack_config))
        if config:
            self.call("Configure", to_configure_request(config))

    def call(self, method, request):
        return self.process.call(method, request, timeout=60.0)

    def analyze(self, resource: EngineResource):
        return self.call("Analyze", analyzer_pb2.AnalyzeRequest(
            type=resource.type, urn=resource.urn, name=resource.urn.rsplit("::", 1)[-1],
            properties=marshal_properties(resource.inputs, dry_run=self.dry_run)))

    def cancel(self):
        return self.call("Cancel", empty_pb2.Empty())


def test_an_update_cancelled_half_way_is_recorded_as_interrupted(ps019_pack, evidence_store):
    stack = StackRef.parse("acme/completeness-cancel/dev")
    rs = resources(stack, n=3)
    engine = PartialPass(ps019_pack, stack, dry_run=False)
    try:
        for r in rs[:2]:
            engine.analyze(r)
        assert records_of(evidence_store, stack) == []  # nothing yet: the update is still running
        engine.cancel()  # before this work: UNIMPLEMENTED, and no record ever
        [record] = records_of(evidence_store, stack)
        assert record.kind.value == "update" and record.outcome == "interrupted"
        assert record.recording.interrupted_by == "engine Cancel"
        assert [r.urn for r in record.resources] == [r.urn for r in rs[:2]]
        # Work after the cancel stops: it fails closed and is not added to the record.
        late = engine.analyze(rs[2])
        assert [d.policyName for d in late.diagnostics] == ["PS019-PACK-000"]
        assert late.diagnostics[0].enforcementLevel == analyzer_pb2.MANDATORY
        engine.cancel()  # the engine's shutdown Cancel after the cancellation: idempotent
        assert len(records_of(evidence_store, stack)) == 1
    finally:
        engine.process.close()
    assert len(records_of(evidence_store, stack)) == 1  # nor does the SIGINT that follows add another


def test_cancel_at_shutdown_after_a_complete_pass_adds_nothing(ps019_pack, evidence_store):
    stack = StackRef.parse("acme/completeness-shutdown/dev")
    result = run_pass(ps019_pack, resources(stack), stack=stack, dry_run=False)  # ends with Cancel, then SIGINT
    assert result.stack_analyzed and not result.failed
    assert [(r.kind.value, r.outcome) for r in records_of(evidence_store, stack)] == [("update", "succeeded")]


def test_an_update_killed_by_sigint_without_cancel_is_recorded_as_interrupted(ps019_pack, evidence_store):
    stack = StackRef.parse("acme/completeness-sigint/dev")
    engine = PartialPass(ps019_pack, stack, dry_run=False)
    try:
        engine.analyze(resources(stack)[0])
    finally:
        engine.process.close()  # SIGINT to the process group, SIGKILL after the grace period
    [record] = records_of(evidence_store, stack)
    assert record.outcome == "interrupted" and record.recording.interrupted_by == "SIGINT"


def test_a_cancelled_production_update_blocked_by_the_gate_keeps_its_blocked_record(ps019_pack, evidence_store,
                                                                                   monkeypatch):
    _clean_ci(monkeypatch)
    stack = StackRef.parse("acme/completeness-cancel-blocked/prod")
    engine = PartialPass(ps019_pack, stack, dry_run=False)
    try:
        response = engine.analyze(resources(stack)[0])
        assert any(d.enforcementLevel == analyzer_pb2.MANDATORY for d in response.diagnostics)
        engine.cancel()
    finally:
        engine.process.close()
    assert [r.kind.value for r in records_of(evidence_store, stack)] == ["blocked"]


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_pass_cancelled_before_its_end_is_never_missing(ps019_pack, evidence_store, dry_run):
    stack = StackRef.parse(f"acme/completeness-cancel-{'preview' if dry_run else 'update'}/dev")
    engine = PartialPass(ps019_pack, stack, dry_run=dry_run)
    try:
        engine.analyze(resources(stack)[0])
        engine.cancel()
    finally:
        engine.process.close()
    [record] = records_of(evidence_store, stack)
    assert record.kind.value == ("preview" if dry_run else "update") and record.outcome == "interrupted"
