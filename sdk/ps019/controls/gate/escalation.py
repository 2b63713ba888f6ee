"""PS019-GATE-005: findings above the delegated severity threshold are escalated to a security approver.

A findings control: the adapter runs it on each resource after the other controls, over the findings they produced
there. So a high-severity finding without a security approval blocks that very resource in an update, before the
provider creates it, and the preview reports it on every resource that carries such a finding. The gate's, the pack's
and the evidence controls' own findings are not risks in the change and do not count.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ps019.controls.base import Control, RunContext
from ps019.model import Diagnostic, Level, Severity, Violation

CONTROL_ID = "PS019-GATE-005"  # ps019.gate.decision.ESCALATION; not imported here to keep pack start-up light


_NOT_RISKS = ("PS019-GATE-", "PS019-PACK-", "PS019-EVID-")


def check(findings: Sequence[Diagnostic], ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    if ctx.gate is None:
        return []
    # A finding waived by an approved exception or named in a break-glass grant is an accepted, recorded risk. One
    # that could not be decided yet (unknown in a preview) is no finding: the update pass checks it with real values.
    risks = [f for f in findings
             if not f.control_id.startswith(_NOT_RISKS) and not f.waived_by and not f.unverifiable]
    if not risks:
        return []
    from ps019.gate.decision import escalation_violations

    return escalation_violations(ctx.gate, [f.severity for f in risks], sources=[f.control_id for f in risks])


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
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
    scope="findings",
)
