"""PS019-GATE-051: post-implementation reviews of break-glass grants that are past their SLA are reported.

PS-019 allows emergency changes "only with documented follow-up review". A grant's review is due
``breakGlass.reviewSlaHours`` after the grant ended (closed or expired). While one is overdue, every run on the stack
reports it here; with ``breakGlass.blockOnOverdueReview`` (the default) no new grant can be opened or used for the
stack until the review is recorded (that refusal is part of the break-glass check, not of this control).
"""

from __future__ import annotations

from typing import Any, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.gate.break_glass_use import STACK_TYPE, _fmt, grant_check_of
from ps019.model import Level, ResourceView, Severity, Violation


def check(resource: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    grant = grant_check_of(ctx)
    if grant is None:
        return []
    out = []
    for overdue in getattr(grant, "overdue_reviews", ()) or ():
        out.append(Violation(
            f"post-implementation review of break-glass grant {overdue.grant_id} (operator {overdue.operator}, "
            f"incident {overdue.incident}) is overdue since {_fmt(overdue.due_at)}; record it with "
            f"`ps019 break-glass review {overdue.grant_id} --reviewer ID --key KEY --notes ... --link ...`",
            urn=resource.urn,
            details={"grant_id": overdue.grant_id, "operator": overdue.operator, "due_at": _fmt(overdue.due_at)}))
    return out


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id="PS019-GATE-051",
    title="Break-glass post-implementation reviews are completed within the SLA",
    clause="PS-019 §1 Emergency changes are allowed only with documented follow-up review; §2 emergency change "
           "requires post-implementation review; §4 emergency-change review and closure documentation",
    severity=Severity.MEDIUM,
    level=Level.ADVISORY,
    rationale="An emergency change whose review never happens leaves the standard's follow-up obligation open and "
              "the change unexplained to auditors.",
    remediation="A person other than the grant's operator records the review with `ps019 break-glass review`.",
    check=check,
    resource_types=(STACK_TYPE,),
)
