"""PS019-GATE-004: Production changes run from the approved deployment path."""

from __future__ import annotations

from ps019.controls.base import Control
from ps019.controls.gate._decision import make_check
from ps019.model import Level, Severity

CONTROL_ID = "PS019-GATE-004"

CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Changes run from the approved deployment path",
    clause="PS-019 §1 no direct production changes outside documented break-glass; normal changes flow through approved deployment mechanisms",
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale="A normal or standard production change must come from CI on a protected ref under the configured deploy identity; anything else is a direct change, allowed only under a valid break-glass grant (then recorded as an emergency change).",
    remediation="Deploy from the pipeline (protected branch, deploy role in gate.approvedPath.deployIdentityPatterns); in an emergency use `ps019 break-glass open`.",
    check=make_check(CONTROL_ID),
    resource_types=None,  # reported on the run's anchor: its first resource (see _decision.py)
)
