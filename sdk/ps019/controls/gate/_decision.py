"""Shared by the approval-gate controls: report what the run's gate decision says for one control ID.

The decision is computed once per run by the pack adapter (``ps019.gate.decide_gate``) and lives in ``ctx.gate``;
these controls do no work of their own, so preview and update report exactly the same thing.
"""

from __future__ import annotations

from typing import Any, Mapping

from ps019.controls.base import RunContext
from ps019.model import ResourceView, Violation

STACK_TYPE = "pulumi:pulumi:Stack"


def decision_violations(control_id: str, resource: ResourceView, ctx: RunContext) -> list[Violation]:
    decision: Any = ctx.gate
    if decision is None or not hasattr(decision, "violations"):
        return []
    return [Violation(v.message, urn=v.urn or resource.urn, details=dict(v.details))
            for v in decision.violations.get(control_id, ())]


def make_check(control_id: str):
    def check(resource: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
        return decision_violations(control_id, resource, ctx)

    return check
