"""PS019-GATE-009: normal and standard changes run inside the tier's change windows and never in a freeze."""

from __future__ import annotations

from ps019.controls.base import Control
from ps019.controls.gate._decision import make_check
from ps019.model import Level, Severity

CONTROL_ID = "PS019-GATE-009"

CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Normal and standard changes run inside the tier's change windows",
    clause="PS-019 §1-2: normal changes flow through approved deployment mechanisms; emergency changes only under "
           "documented break-glass",
    severity=Severity.MEDIUM,
    level=Level.MANDATORY,
    rationale="Freezes and deploy windows (gate.rules.<tier>.changeWindows, each with its time zone) say when a tier "
              "may change. Outside them a normal or standard change waits; an emergency goes through break-glass.",
    remediation="Deploy inside the window named in the message, or open a break-glass grant for an emergency.",
    check=make_check(CONTROL_ID),
    resource_types=None,  # reported on the run's anchor: its first resource (see _decision.py)
)
