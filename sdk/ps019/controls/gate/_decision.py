"""Shared by the approval-gate controls: report what the run's gate decision says for one control ID.

The decision is computed once per run by the pack adapter (``ps019.gate.decide_gate``) and lives in ``ctx.gate``;
these controls do no work of their own, so preview and update report exactly the same thing. They apply to every
resource type but report only on the run's anchor: the first resource the engine analyzes (``pulumi:pulumi:Stack``
under the real engine; the first resource of an export or program that has no root stack resource). If no resource
is analyzed at all, PS019-GATE-008 reports the decision at AnalyzeStack.
"""

from __future__ import annotations

from typing import Any, Mapping

from ps019.controls.base import NotApplicable, RunContext
from ps019.model import ResourceView, Violation

STACK_TYPE = "pulumi:pulumi:Stack"


def on_anchor(resource: ResourceView, ctx: RunContext) -> bool:
    """Whether ``resource`` carries the run's gate decision (see the module docstring)."""
    anchor = getattr(ctx.gate, "anchor", None)
    if anchor is None:
        return resource.type == STACK_TYPE
    return anchor.claim(resource.urn)


def decision_violations(control_id: str, resource: ResourceView, ctx: RunContext) -> list[Violation]:
    decision: Any = ctx.gate
    if decision is None or not hasattr(decision, "violations"):
        return []
    if not on_anchor(resource, ctx):
        # Counted as not applicable, not passed: the decision is reported once, on the run's anchor.
        raise NotApplicable("the gate decision is reported once per run, on the run's first resource")
    return [Violation(v.message, urn=v.urn or resource.urn, details=dict(v.details))
            for v in decision.violations.get(control_id, ())]


def make_check(control_id: str):
    def check(resource: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
        return decision_violations(control_id, resource, ctx)

    return check
