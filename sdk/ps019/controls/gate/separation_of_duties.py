"""PS019-GATE-003: Approvers are independent of the author and the deployer."""

from __future__ import annotations

from ps019.controls.base import Control
from ps019.controls.gate._decision import make_check
from ps019.model import Level, Severity

CONTROL_ID = "PS019-GATE-003"

CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Approvers are independent of the author and the deployer",
    clause="PS-019 §3 code changes require peer review; separation of duties between author, approver and deployer",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="An author approving their own change, or an approver deploying it, is not a review. Identities are compared case-insensitively, through gate.identityAliases and AWS role-session names.",
    remediation="Have someone other than the author and the deployer approve; map people's CI logins and SSO session names to one identity in gate.identityAliases.",
    check=make_check(CONTROL_ID),
    resource_types=None,  # reported on the run's anchor: its first resource (see _decision.py)
)
