"""PS019-GATE-002: Production changes carry enough verified approvals in the required roles."""

from __future__ import annotations

from ps019.controls.base import Control
from ps019.controls.gate._decision import make_check
from ps019.model import Level, Severity

CONTROL_ID = "PS019-GATE-002"

CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Changes carry enough verified approvals in the required roles",
    clause="PS-019 §3 production deployments retain approver evidence; release gates: no implied approval",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="An approval counts only if it is signed by a key in gate.trustedKeys, for the role that key may sign as, over this exact change request (stacks, commit, plan), and is neither expired nor older than gate.maxApprovalAge.",
    remediation="Ask trusted approvers to run `ps019 approve FILE --key KEY --identity ID --role ROLE` on the final change request; any later edit invalidates every signature.",
    check=make_check(CONTROL_ID),
    resource_types=None,  # reported on the run's anchor: its first resource (see _decision.py)
)
