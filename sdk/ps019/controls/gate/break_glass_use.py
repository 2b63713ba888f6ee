"""PS019-GATE-050: a change made under a break-glass grant is reported, with who, why and until when.

The gate decision already lets the direct production change through as an ``emergency`` change when the deployer
holds a valid grant (``ps019.gate.breakglass.check_break_glass``); this control makes the override visible in every
preview, update and evidence record, so that it can never pass silently. Advisory by design: it informs, the gate
decides.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from ps019.controls.base import Control, RunContext
from ps019.model import Level, ResourceView, Severity, Violation

STACK_TYPE = "pulumi:pulumi:Stack"


def grant_check_of(ctx: RunContext) -> Any:
    """The run's ``GrantCheck``: ``ctx.break_glass`` if the adapter provides it, else ``ctx.gate.break_glass``."""
    for holder in (ctx, getattr(ctx, "gate", None), getattr(ctx, "history", None)):
        value = getattr(holder, "break_glass", None) if holder is not None else None
        if value is not None and hasattr(value, "valid"):
            return value
    return None


def exceptions_summary_of(ctx: RunContext) -> Any:
    """The run's ``ExceptionsSummary``, read from the evidence store by the pack's edge (``ctx.history``)."""
    return getattr(ctx.history, "exceptions", None)


def _fmt(ts: datetime | None) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "?"


def check(resource: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    grant = grant_check_of(ctx)
    if grant is None or not grant.valid or not grant.grant_id:
        return []
    waived = ", ".join(grant.waived_controls) or "none"
    message = (f"change made under break-glass grant {grant.grant_id} by {grant.operator} (incident {grant.incident}: "
               f"{grant.reason}); expires {_fmt(grant.expires_at)}; waived controls: {waived}. Close the grant when "
               f"done (`ps019 break-glass close {grant.grant_id}`); a post-implementation review by a different "
               "person is required")
    return [Violation(message, urn=resource.urn, details={
        "grant_id": grant.grant_id, "operator": grant.operator, "incident": grant.incident,
        "expires_at": _fmt(grant.expires_at), "waived_controls": list(grant.waived_controls),
        "notices": list(grant.notices)})]


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id="PS019-GATE-050",
    title="Changes made under break-glass are reported",
    clause="PS-019 §1 No direct production changes outside documented break-glass procedures; "
           "release gates: track gate bypasses and emergency releases",
    severity=Severity.MEDIUM,
    level=Level.ADVISORY,
    rationale="An emergency override that passes silently is indistinguishable from a bypass. Naming the grant, "
              "its operator, incident and waived controls on every run makes each emergency change attributable "
              "and countable.",
    remediation="Nothing to fix during the incident. Afterwards close the grant (`ps019 break-glass close GRANT`) and "
                "have a different person record the review (`ps019 break-glass review GRANT --reviewer ...`).",
    check=check,
    resource_types=(STACK_TYPE,),
)
