"""PS019-GATE-052: exceptions that do nothing (expired, unapproved, untrusted, edited, for another stack) are
reported, so nobody believes a finding is excepted when it is not.

Valid exceptions need no control of their own: every finding they cover is already reported as advisory with
"waived by exception EX-…" by the adapter (``ps019.gate.waivers.apply_waivers``).
"""

from __future__ import annotations

from typing import Any, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.gate.break_glass_use import STACK_TYPE, exceptions_summary_of
from ps019.model import Level, ResourceView, Severity, Violation


def check(resource: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    summary = exceptions_summary_of(ctx)
    if summary is None:
        return []
    out = []
    for exc, reason in summary.ignored:
        if exc is None:
            out.append(Violation(f"an exception record cannot be used: {reason}", urn=resource.urn,
                                 details={"reason": reason}))
            continue
        out.append(Violation(
            f"exception {exc.exception_id} ({exc.control_id} on {exc.resource}) has no effect: {reason}",
            urn=resource.urn,
            details={"exception_id": exc.exception_id, "control_id": exc.control_id, "resource": exc.resource,
                     "reason": reason}))
    return out


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id="PS019-GATE-052",
    title="Unusable exceptions are reported",
    clause="release gates: required security requirements are complete, deferred with approval, or formally "
           "excepted; exception and risk-acceptance references for any unmet controls",
    severity=Severity.LOW,
    level=Level.ADVISORY,
    rationale="An expired or unapproved exception silently doing nothing would surprise its owner at the worst "
              "moment; an unapproved one doing something would be an implied approval.",
    remediation="Renew the exception (`ps019 exception add ...` signed by an approver or security key) or fix the "
                "finding.",
    check=check,
    resource_types=(STACK_TYPE,),
)
