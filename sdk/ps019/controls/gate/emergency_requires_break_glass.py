"""PS019-GATE-007: Emergency changes run only under a valid break-glass grant."""

from __future__ import annotations

from ps019.controls.base import Control
from ps019.controls.gate._decision import make_check
from ps019.model import Level, Severity

CONTROL_ID = "PS019-GATE-007"

CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Emergency changes run only under a valid break-glass grant",
    clause="PS-019 §1 emergency changes are allowed only with documented follow-up review; §2 emergency change class",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="Declaring a change an emergency shortens the approval path, so it must be backed by an audited break-glass grant (bound to the operator and stack, expiring, reviewed afterwards).",
    remediation="Open a grant with `ps019 break-glass open --stack ORG/PROJECT/STACK --reason ... --incident ...`, or present a normal change with approvals.",
    check=make_check(CONTROL_ID),
    resource_types=None,  # reported on the run's anchor: its first resource (see _decision.py)
)
