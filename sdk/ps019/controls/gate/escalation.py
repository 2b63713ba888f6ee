"""PS019-GATE-005: findings above the delegated severity threshold are escalated to a security approver.

Findings are only known once every resource has been analyzed, so this is a stack control: it runs in AnalyzeStack
with the severities of the run's findings. In ``pulumi up`` the preview phase runs it before anything changes, so a
missing security approval stops the update there (after an update AnalyzeStack can only mark the run failed).
The adapter supplies the severities as ``ctx.finding_severities`` (or calls ``escalation_violations`` itself).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ps019.controls.base import Control, RunContext
from ps019.gate.decision import ESCALATION, escalation_violations
from ps019.model import Level, ResourceView, Severity, Violation

CONTROL_ID = ESCALATION


def check(resources: Sequence[ResourceView], ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    severities = getattr(ctx, "finding_severities", None)
    if ctx.gate is None or severities is None:
        return []
    return escalation_violations(ctx.gate, severities)


CONTROL = Control(
    id=CONTROL_ID,
    title="Risks above the delegated threshold are escalated to a security approver",
    clause="Release gates: known open risks above the delegated threshold are escalated before production approval",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="An approver without security delegation may not accept a high-severity finding; the change needs a "
              "verified approval in the security role(s) (gate.escalation.requiredRoles) once findings at or above "
              "gate.escalation.severity are present.",
    remediation="Fix the findings, or have a security approver sign the change request "
                "(`ps019 approve FILE --role security`), or record an approved exception (`ps019 exception add`).",
    check=check,
    scope="stack",
)
