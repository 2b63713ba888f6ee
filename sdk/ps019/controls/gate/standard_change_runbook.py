"""PS019-GATE-006: Standard changes reference a pre-approved runbook."""

from __future__ import annotations

from ps019.controls.base import Control
from ps019.controls.gate._decision import make_check
from ps019.model import Level, Severity

CONTROL_ID = "PS019-GATE-006"

CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Standard changes reference a pre-approved runbook",
    clause="PS-019 §2 standard change: pre-approved low-risk repeatable activity with documented runbook",
    severity=Severity.MEDIUM,
    level=Level.MANDATORY,
    rationale="The standard class skips part of the review only because the activity was approved in advance as a runbook; a standard change without a listed runbook is an unreviewed normal change.",
    remediation="Set runbook_id to an ID in gate.standardRunbooks, or present the change as change_class normal.",
    check=make_check(CONTROL_ID),
    resource_types=None,  # reported on the run's anchor: its first resource (see _decision.py)
)
