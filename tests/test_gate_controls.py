"""The approval-gate controls PS019-GATE-001..007 over their fixtures (sdk/ps019/controls/gate/fixtures/<module>/).

A fixture describes a scenario (change request overrides, approvals by named signers, CI ref, grant, findings); the
test signs the approvals with per-session keys, runs decide_gate and the control, and checks allow/deny + message."""

from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

import ps019.controls.gate as gate_controls
from ps019.controls.base import RunContext
from ps019.gate import change_request as crm
from ps019.gate import signing
from ps019.gate.ci_identity import CiIdentity
from ps019.gate.decision import Deployer, GateInputs, decide_gate, escalation_violations
from ps019.gate.settings import GateSettings, TrustedKey
from ps019.model import Diagnostic, Level, ResourceView, Severity

FIXTURES = Path(gate_controls.__file__).parent / "fixtures"
MODULES = ("change_request_valid", "approvals_verified", "separation_of_duties", "approved_deployment_path",
           "escalation", "standard_change_runbook", "emergency_requires_break_glass")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STACK = "acme/payments/prod"
COMMIT = "9" * 40
KEYS = {n: signing.generate_private_key() for n in ("alice", "bob", "sec", "mallory", "carol")}
SETTINGS = GateSettings(
    # carol (the fixtures' default author) holds a key with no approving role: enough to sign as the author
    trusted_keys=[TrustedKey(public_key=signing.public_key_text(KEYS[n]), identity=f"{n}@example.com", roles=roles)
                  for n, roles in (("alice", ("approver",)), ("bob", ("approver",)), ("sec", ("security",)),
                                   ("carol", ()))],
    standard_runbooks=["RB-rotate-certs"],
    # CI identity proven by the CI job's OIDC ID token (the token itself is verified in tests/test_oidc_verify.py;
    # here the decision gets the verified facts).
    oidc={"issuers": [{"name": "github", "issuer": "https://token.actions.githubusercontent.com",
                       "provider": "github", "audiences": ["ps019"], "jwks": {"keys": []}}],
          "rules": {"production": [{"issuer": "github", "repository": ["acme/payments"],
                                    "ref": ["refs/heads/main"]}]}},
)
ROOT = ResourceView(urn="urn:pulumi:prod::payments::pulumi:pulumi:Stack::payments-prod", type="pulumi:pulumi:Stack",
                    name="payments-prod", props={}, custom=False)


def scenario_inputs(case: dict) -> GateInputs:
    spec = case.get("change_request")
    source = None
    if spec is not None:
        spec = dict(spec)
        approvals_spec = spec.pop("approvals", [])
        tamper = spec.pop("tamper", {})
        doc = {"ticket": "CHG-1", "change_class": "normal", "summary": "s", "owner": "payments",
               "author": "carol@example.com", "artifact": {"git_commit": COMMIT}, "stacks": [STACK],
               "test_evidence": "https://ci/1", "rollback_plan": "https://wiki/rb", "monitoring_plan": "https://wiki/m",
               "expires_at": "2026-11-21T12:00:00Z", **spec}
        request = crm.ChangeRequest.model_validate(doc)
        approvals = [crm.sign_approval(request, KEYS[a["signer"]], approver=f"{a['signer']}@example.com",
                                       role=a["role"], signed_at=NOW - timedelta(hours=1)).model_dump(mode="json")
                     for a in approvals_spec]
        data = json.dumps({**doc, **tamper, "approvals": approvals}).encode()
        source = crm.ChangeRequestSource("env PS019_CHANGE_REQUEST", "/ci/change.json", data=data)
    ref = case.get("ci_ref", "refs/heads/main")
    token = CiIdentity(verified=True, issuer_name="github", issuer="https://token.actions.githubusercontent.com",
                       provider="github", repository="acme/payments", ref=ref, ref_protected=True, sha=COMMIT,
                       actor="deploy-bot", jti="jti-1", run_id="1") if ref else None
    ci = token.ci_run() if token else None
    grant = case.get("break_glass")
    return GateInputs(stack_ref=STACK, tier="production", tier_source="pack pattern '*/prod'", now=NOW,
                      change_request=source, ci=ci, ci_identity=token,
                      deployer=Deployer("deploy-bot", "oidc") if token else Deployer("dave", "local-user"),
                      artifact_commit=COMMIT, artifact_source="github CI commit",
                      break_glass=SimpleNamespace(problems=(), notices=(), **grant) if grant else None)


def cases():
    for module in MODULES:
        for path in sorted((FIXTURES / module).glob("*/*.json")):
            yield pytest.param(module, path, id=f"{module}/{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("module, path", list(cases()))
def test_fixture(module, path):
    case = json.loads(path.read_text())
    control = importlib.import_module(f"ps019.controls.gate.{module}").CONTROL
    decision = decide_gate(scenario_inputs(case), SETTINGS)
    ctx = RunContext(organization="acme", project="payments", stack="prod", dry_run=False, tier="production",
                     gate=decision)
    if control.scope == "findings":
        findings = [Diagnostic(control_id="PS019-IAM-001", level=Level.MANDATORY, severity=Severity(s), urn=ROOT.urn,
                               message="finding") for s in case.get("finding_severities", ())]
        found = control.check(findings, ctx, control.params({}))
    else:
        found = [v for v in control.check(ROOT, ctx, control.params({})) if not v.details.get("advisory")]
    if path.parent.name == "allow":
        assert found == [], (case["description"], [v.message for v in found])
    else:
        assert found, case["description"]
        text = " | ".join(v.message for v in found)
        for fragment in case.get("message_contains", ()):
            assert fragment in text, (fragment, text)
        assert "Fix:" in text and "[" in text  # says how to fix it and which clause it serves


def test_every_gate_control_has_allow_and_deny_fixtures_and_is_mandatory_on_the_runs_anchor():
    for module in MODULES:
        assert list((FIXTURES / module / "allow").glob("*.json")), module
        assert list((FIXTURES / module / "deny").glob("*.json")), module
        control = importlib.import_module(f"ps019.controls.gate.{module}").CONTROL
        assert control.level == Level.MANDATORY
        # every resource type: the decision is reported on the run's first analyzed resource (its anchor)
        assert control.scope == "findings" or control.resource_types is None


def test_escalation_control_id_matches_the_decision():
    from ps019.controls.gate import escalation
    from ps019.gate.decision import ESCALATION

    assert escalation.CONTROL.id == ESCALATION
