"""PS019-GATE-008: every run gets a gate decision, even one in which no resource carried it.

The gate controls (GATE-001..007) report on the run's first analyzed resource (``_decision.py``). When the engine
analyzed no resource at all before AnalyzeStack (an empty update, or a program or export whose resources were all
skipped), nothing carried the decision; this stack control reports it at AnalyzeStack instead, so a production run
never completes without the gate having decided.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ps019.controls.base import Control, RunContext
from ps019.model import Level, ResourceView, Severity, Violation

CONTROL_ID = "PS019-GATE-008"


def check(resources: Sequence[ResourceView], ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    decision: Any = ctx.gate
    if decision is None:
        return [Violation("the production change gate could not be evaluated for this run (no gate decision); "
                          "failing closed. Check ps019-settings.gate / ps019-settings.environments in the policy pack "
                          "config and the pack's log [PS-019 §1: no direct production changes outside break-glass]")]
    anchor = getattr(decision, "anchor", None)
    if anchor is None or anchor.claimed:
        return []
    anchor.claim("analyze-stack")
    return [Violation(f"{control_id} (reported at AnalyzeStack: no resource of this run carried the gate decision): "
                      f"{v.message}", details=dict(v.details))
            for control_id, found in sorted(decision.violations.items()) for v in found]


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Every run gets a gate decision",
    clause="PS-019 §1: no direct production changes outside documented break-glass",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="The gate's decision is reported on the first resource the engine analyzes. A run in which no "
              "resource was analyzed must not end without it: the decision is reported here, at AnalyzeStack.",
    remediation="Present an approved change request from the approved deployment path (see PS019-GATE-001..007).",
    check=check,
    scope="stack",
)
