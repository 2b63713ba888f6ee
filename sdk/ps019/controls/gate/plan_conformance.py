"""PS019-GATE-020: every deployed resource conforms to the approved plan the change request binds.

A change request with ``artifact.plan_digest`` approves one ``pulumi preview --save-plan`` file. The gate checks the
presented file's digest (PS019-GATE-001); this control checks each analyzed resource against that plan
(``ps019.gate.plan``): it is in the plan, its type is the planned one, the inputs the plan creates or changes have the
planned values, and a resource the plan leaves unchanged has the inputs of its last recorded deployment (read from
the evidence store by the pack). So presenting the approved plan file while deploying another program is blocked on
the first resource that differs.
"""

from __future__ import annotations

from typing import Any, Mapping

from ps019.controls.base import Control, NotApplicable, RunContext
from ps019.model import Level, ResourceView, Severity, Violation

CONTROL_ID = "PS019-GATE-020"  # ps019.gate.plan.PLAN_CONFORMANCE; not imported here: the ps019.gate package loads
# pydantic and cryptography, which the pack must not load at start-up (tests/test_pack_config_models.py)


def check(resource: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    decision: Any = ctx.gate
    if decision is None:
        return []  # no gate decision at all: PS019-GATE-008 fails the run closed
    if getattr(decision, "bound_plan", None) is None:
        raise NotApplicable("no approved plan is bound to this run (the change request names no plan_digest, or the "
                            "presented plan file does not match it: PS019-GATE-001 reports that)")
    from ps019.gate.plan import plan_violations

    return plan_violations(decision, resource, getattr(ctx.history, "applied_inputs", None))


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id=CONTROL_ID,
    title="Deployed resources conform to the approved plan",
    clause="PS-019 release gates: release approval is tied to explicit evidence, not verbal assurance",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="An approval of a plan binds the resources the change touches and their planned inputs. A deployer who "
              "presents the approved plan file but runs a different program (another resource, another input value, "
              "a change to a resource the plan leaves alone) is deploying something nobody approved.",
    remediation="Deploy the approved plan (`pulumi up --plan FILE`), or make a new plan and have it approved.",
    check=check,
    resource_types=None,
)
