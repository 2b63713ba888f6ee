"""The three ways an engine runs the pack, through the stand-in over gRPC (issue 9, "Driven by ConfigureStack"):

- the current CLI: ConfigureStack carries stack, project, organisation, dry-run, config, secret keys and tags, and the
  language host also sets PULUMI_* variables -- which the CLI's own environment overrides (it is appended after them);
- an engine that sends no ConfigureStack but sets the variables (the legacy analyzer shim): they are the fallback;
- ``pulumi policy analyze``: no ConfigureStack and no variables. An analysis: findings, no blocking, no record.

Plus the interrupt: the stand-in sends Cancel to every pack when a run is cancelled, as the CLI does.
"""

from __future__ import annotations

import os
import threading

import pytest

from ps019.engine import EngineResource, StackRef, run_pass
from ps019.engine.runner import run_passes, run_policy_analyze
from ps019.model import Level

ADMIN_POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}')


def resources(stack: StackRef, *, admin: bool = False) -> list[EngineResource]:
    root = stack.root_urn
    out = [EngineResource(urn=root, type="pulumi:pulumi:Stack", custom=False),
           EngineResource(urn=f"urn:pulumi:{stack.stack}::{stack.project}::aws:s3/bucket:Bucket::assets",
                          type="aws:s3/bucket:Bucket", id="assets", parent=root,
                          inputs={"bucket": "assets", "acl": "private"}, outputs={"bucket": "assets"})]
    if admin:
        out.append(EngineResource(
            urn=f"urn:pulumi:{stack.stack}::{stack.project}::aws:iam/rolePolicy:RolePolicy::admin",
            type="aws:iam/rolePolicy:RolePolicy", id="admin", parent=root,
            inputs={"role": "app", "policy": ADMIN_POLICY}, outputs={"role": "app", "policy": ADMIN_POLICY}))
    return out


def records_of(store, stack: StackRef):
    return [s.record for s in store.query(stack=str(stack))]


def _clean(monkeypatch):
    for var in ("PULUMI_STACK", "PULUMI_PROJECT", "PULUMI_ORGANIZATION", "PULUMI_DRY_RUN", "PULUMI_CONFIG",
                "PS019_CHANGE_REQUEST", "GITHUB_ACTIONS", "CI"):
        monkeypatch.delenv(var, raising=False)


def test_configure_stack_wins_over_variables_the_deployer_sets(ps019_pack, evidence_store, monkeypatch):
    """ATTACK: a deployer who controls the CLI's environment sets PULUMI_STACK=dev and PULUMI_DRY_RUN=true for a
    production update. The CLI appends its environment after the proxy's variables, so pulumi_policy (and ps019 before
    this work) saw a development preview: the production gate's mandatory block became an advisory, nothing was
    blocked, and the record said 'preview of dev'. ConfigureStack comes from the engine itself."""
    _clean(monkeypatch)
    stack = StackRef.parse("acme/paths-attack/prod")
    cli_env = dict(os.environ, PULUMI_STACK="dev", PULUMI_DRY_RUN="true", PULUMI_PROJECT="paths-attack",
                   PULUMI_ORGANIZATION="acme")
    result = run_pass(ps019_pack, resources(stack), stack=stack, dry_run=False, environ=cli_env)
    gate = [d for d in result.diagnostics if d.policy_name == "PS019-GATE-001"]
    assert gate and gate[0].level is Level.MANDATORY
    assert result.blocked_at == stack.root_urn
    [record] = records_of(evidence_store, stack)
    assert record.kind.value == "blocked" and record.stack == "prod" and record.environment == "production"
    assert records_of(evidence_store, StackRef.parse("acme/paths-attack/dev")) == []


def test_configure_stack_config_and_tags_reach_the_run(ps019_pack, evidence_store, monkeypatch):
    """Stack tags and config come from ConfigureStack. ATTACK: the deployer's PULUMI_CONFIG='{}' hid the stack config
    that raises a development stack to production (ps019:environment), so the gate ran with development's rules."""
    _clean(monkeypatch)
    # a stack no pattern classifies: a trusted tag declaration (allowed by this pack config) makes it development
    sandbox = StackRef.parse("acme/paths-config/sandbox-7")
    config = {"ps019-settings": {"environments": {"trustedDeclarations": ["tag"]}}}
    result = run_pass(ps019_pack, resources(sandbox), stack=sandbox, dry_run=True,
                      tags={"ps019:environment": "development"}, policy_pack_config=config)
    gate = [d for d in result.diagnostics if d.policy_name == "PS019-GATE-001"]
    assert gate and gate[0].level is Level.ADVISORY, gate
    [record] = records_of(evidence_store, sandbox)
    assert record.environment == "development" and record.kind.value == "preview"
    # a development stack whose stack config raises it to production, with the config variable emptied by the CLI env
    dev = StackRef.parse("acme/paths-config/dev")
    result = run_pass(ps019_pack, resources(dev), stack=dev, dry_run=True, config={"ps019:environment": "production"},
                      environ=dict(os.environ, PULUMI_CONFIG="{}"))
    gate = [d for d in result.diagnostics if d.policy_name == "PS019-GATE-001"]
    assert gate and gate[0].level is Level.MANDATORY, gate
    [record] = records_of(evidence_store, dev)
    assert record.environment == "production"


def test_an_engine_without_configure_stack_falls_back_to_the_variables(ps019_pack, evidence_store, monkeypatch):
    _clean(monkeypatch)
    stack = StackRef.parse("acme/paths-legacy/dev")
    result = run_pass(ps019_pack, resources(stack), stack=stack, dry_run=True, send_configure_stack=False)
    assert result.stack_analyzed and result.mode == "deployment"
    [record] = records_of(evidence_store, stack)
    assert record.kind.value == "preview" and record.stack == "dev" and record.project == "paths-legacy"


def test_policy_analyze_reports_findings_but_writes_no_record_and_says_so(ps019_pack, evidence_store, monkeypatch):
    """BEFORE: with no ConfigureStack and no variables ps019 assumed organization/project/stack, dry_run=false, and
    wrote update (or blocked) records for that phantom stack."""
    _clean(monkeypatch)
    stack = StackRef.parse("acme/paths-analyze/prod")
    [result] = run_policy_analyze([ps019_pack], resources(stack, admin=True), stack=stack)
    assert result.mode == "analyze" and result.blocked_at is None and result.stack_analyzed
    assert any(d.policy_name == "PS019-IAM-001" and d.level is Level.MANDATORY for d in result.diagnostics)
    assert not [d for d in result.diagnostics if d.policy_name.startswith("PS019-GATE")]
    assert any("analysis only" in line for line in result.pack_output), result.pack_output
    stack_summary = result.summary_for("")
    assert "pulumi policy analyze" in stack_summary.not_applicable["PS019-EVID-001"]
    root_summary = result.summary_for(stack.root_urn)
    assert "pulumi policy analyze" in root_summary.not_applicable["PS019-GATE-001"]
    assert records_of(evidence_store, stack) == []
    phantom = StackRef.parse("organization/project/stack")
    assert records_of(evidence_store, phantom) == []


def test_not_applicable_is_reported_with_a_reason_for_every_policy_that_does_not_apply(ps019_pack, pack_pool,
                                                                                      monkeypatch):
    """BEFORE: every enabled policy counted as passed on every resource (summary.go: passed = enabled - failed -
    not applicable), so IAM controls 'passed' on S3 buckets and the config-only ps019-settings 'passed' the stack."""
    _clean(monkeypatch)
    stack = StackRef.parse("acme/paths-na/dev")
    result = run_pass(ps019_pack, resources(stack), stack=stack, dry_run=True, pool=pack_pool)
    bucket = result.summary_for(f"urn:pulumi:dev::paths-na::aws:s3/bucket:Bucket::assets")
    assert "not aws:s3/bucket:Bucket" in bucket.not_applicable["PS019-IAM-001"]
    assert "PS019-IAM-001" not in bucket.passed
    assert "PS019-GATE-001" in bucket.not_applicable  # a root-stack control
    stack_summary = result.summary_for("")
    assert "ps019-settings" in stack_summary.not_applicable and "ps019-settings" not in stack_summary.passed
    enabled = {p.name for p in result.policies if p.kind == "resource" and p.level is not Level.DISABLED}
    for summary in (s for s in result.summaries if s.kind == "resource"):
        counted = set(summary.passed) | set(summary.failed) | set(summary.not_applicable)
        assert counted == enabled, summary.urn
        assert all(reason for reason in summary.not_applicable.values())
    assert result.compliance["not_applicable"] > result.compliance["passed"]


def test_several_packs_share_one_pass_and_one_bail_point(ps019_pack, test_packs, monkeypatch):
    _clean(monkeypatch)
    stack = StackRef.parse("acme/paths-multi/dev")
    rs = resources(stack, admin=True)
    ours, theirs = run_passes([ps019_pack, test_packs / "third_party"], rs, stack=stack, dry_run=False)
    assert ours.pack_name == "ps019" and theirs.pack_name != "ps019"
    admin = rs[-1].urn
    assert ours.blocked_at == theirs.blocked_at == admin  # ps019's mandatory IAM finding stops both packs there
    assert theirs.analyzed_urns == [r.urn for r in rs] and not theirs.stack_analyzed


class _CancelAfter(threading.Event):
    """Set once ``n`` resources were analyzed: an interrupt in the middle of the update."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.checks = n

    def is_set(self) -> bool:  # noqa: D401 - threading.Event API
        self.checks -= 1
        return self.checks < 0


def test_an_interrupted_update_sends_cancel_to_every_pack(ps019_pack, test_packs, evidence_store, monkeypatch):
    _clean(monkeypatch)
    stack = StackRef.parse("acme/paths-cancel/dev")
    rs = resources(stack, admin=False) + [EngineResource(
        urn=f"urn:pulumi:dev::paths-cancel::aws:s3/bucket:Bucket::late", type="aws:s3/bucket:Bucket", id="late",
        inputs={"bucket": "late"}, outputs={"bucket": "late"})]
    ours, theirs = run_passes([ps019_pack, test_packs / "third_party"], rs, stack=stack, dry_run=False,
                              cancel=_CancelAfter(2))
    assert ours.cancelled and theirs.cancelled and not ours.stack_analyzed
    assert ours.analyzed_urns == [r.urn for r in rs[:2]]
    [record] = records_of(evidence_store, stack)  # the pack got Cancel: its record says the update was interrupted
    assert record.outcome == "interrupted" and record.recording.interrupted_by == "engine Cancel"


def test_keyboard_interrupt_sends_cancel_before_the_packs_are_stopped(ps019_pack, evidence_store, monkeypatch):
    _clean(monkeypatch)
    stack = StackRef.parse("acme/paths-ctrlc/dev")

    class CtrlC(threading.Event):
        calls = 0

        def is_set(self) -> bool:
            CtrlC.calls += 1
            if CtrlC.calls == 2:
                raise KeyboardInterrupt
            return False

    with pytest.raises(KeyboardInterrupt):
        run_pass(ps019_pack, resources(stack), stack=stack, dry_run=False, cancel=CtrlC())
    [record] = records_of(evidence_store, stack)
    assert record.outcome == "interrupted" and record.recording.interrupted_by == "engine Cancel"
