"""PS019-GATE-001: a production change presents a valid change request bound to this stack and this artifact."""

from __future__ import annotations

from typing import Any, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.gate._decision import decision_violations
from ps019.model import Level, ResourceView, Severity, Violation

CONTROL_ID = "PS019-GATE-001"


def check(resource: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    if ctx.gate is None:
        # No decision means the adapter could not gather the gate's facts: fail closed, once, here.
        return [Violation("the production change gate could not be evaluated for this run (no gate decision); "
                          "failing closed. Check ps019-settings.gate / ps019-settings.environments in the policy pack "
                          "config and the pack's log [PS-019 §1: no direct production changes outside break-glass]")]
    return decision_violations(CONTROL_ID, resource, ctx)


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Changes present a valid change request for this stack and artifact",
    clause="PS-019 §1 release approval is tied to explicit evidence; §4 linked ticket; release gates: change context, "
           "rollback plan and monitoring plan are recorded",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="A change request names the ticket, owner, author, the exact commit (and plan) and the stacks it "
              "approves, plus test evidence, rollback and monitoring plans; without it an approval is implied, "
              "which the standard forbids.",
    remediation="Create one with `ps019 change-request new`, collect approvals with `ps019 approve`, and point the "
                "deploy step at it with PS019_CHANGE_REQUEST=/abs/path (or stack config ps019:changeRequest).",
    check=check,
    resource_types=None,  # reported on the run's anchor: its first resource (see _decision.py)
)
