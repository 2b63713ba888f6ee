"""The approved update plan (``pulumi preview --save-plan``) as plain data, and what a deployed resource must match.

A change request that names ``artifact.plan_digest`` binds its approvals to one plan file: the set of resources the
change touches (URNs with their planned steps) and the planned input changes of each. The digest alone binds the
approval to the *file* the deployer presents; this module binds it to what the run actually deploys, resource by
resource (PS019-GATE-020), so an insider cannot present the approved plan file and deploy a different program.

Pure: :func:`parse_plan` reads bytes (the file read is in ``ps019.gate.ci``), :func:`resource_problems` compares one
analyzed resource with its planned goal. The plan format is Pulumi's ``apitype.DeploymentPlanV1``
(``sdk/go/common/apitype/plan.go``): ``resourcePlans: {urn: {goal: {type, custom, inputDiff: {adds, updates,
deletes}}, steps: [...]}}``. Pulumi computes ``inputDiff`` against the resource's previous inputs (all of them are
``adds`` for a create). A resource whose only step is ``same`` is planned unchanged: its inputs must equal those of its
last recorded deployment, which the caller reads from the evidence store (``applied_digest``).

Messages name resources and property paths, never values (a value may be a secret).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

MAX_PLAN_BYTES = 64 * 1024 * 1024
_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's special-value signature key
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # an input unknown at preview: any value conforms (as in Pulumi)
UNCHANGED_STEPS = frozenset({"same"})
WILDCARD = object()  # a planned value the pack cannot compare: unknown at preview, a secret (encrypted), an asset


@dataclass(frozen=True)
class PlannedResource:
    urn: str
    type: str | None  # None: no goal (the plan deletes the resource)
    custom: bool
    steps: tuple[str, ...]
    adds: Mapping[str, Any] = field(default_factory=dict)
    updates: Mapping[str, Any] = field(default_factory=dict)
    deletes: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        return bool(self.steps) and set(self.steps) <= UNCHANGED_STEPS

    @property
    def creates(self) -> bool:
        return "create" in self.steps and not set(self.steps) & {"update", "replace", "create-replacement"}

    @property
    def deleted(self) -> bool:
        return self.type is None


@dataclass(frozen=True)
class ApprovedPlan:
    digest: str
    resources: Mapping[str, PlannedResource]

    def summary(self) -> dict[str, Any]:
        """For the evidence record: the plan's digest and how many resources it plans per step."""
        counts: dict[str, int] = {}
        for planned in self.resources.values():
            key = "+".join(planned.steps) or "none"
            counts[key] = counts.get(key, 0) + 1
        return {"digest": self.digest, "resources": len(self.resources), "steps": dict(sorted(counts.items()))}


class PlanError(ValueError):
    """The plan file is not a usable Pulumi deployment plan (one line, says why)."""


def _or(value: Any, default: Any) -> Any:
    """Pulumi omits empty fields (``omitempty``) and may write null; any other value must have the right shape."""
    return default if value is None else value


def parse_plan(data: bytes, digest: str) -> ApprovedPlan:
    """The plan in ``data`` (a ``pulumi preview --save-plan`` file), or :class:`PlanError` saying why it is unusable."""
    if len(data) > MAX_PLAN_BYTES:
        raise PlanError(f"larger than {MAX_PLAN_BYTES // (1024 * 1024)} MiB")
    from ps019.gate.change_request import DuplicateKey, no_duplicate_keys

    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except DuplicateKey as exc:
        raise PlanError(str(exc)) from None
    except UnicodeDecodeError:
        raise PlanError("not UTF-8 text") from None
    except RecursionError:
        raise PlanError("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise PlanError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("manifest"), dict):
        raise PlanError("not a Pulumi deployment plan (no manifest object)")
    plans = _or(doc.get("resourcePlans"), {})
    if not isinstance(plans, dict):
        raise PlanError("resourcePlans is not an object")
    resources: dict[str, PlannedResource] = {}
    for urn, plan in plans.items():
        if not isinstance(plan, dict):
            raise PlanError(f"resourcePlans[{urn!r}] is not an object")
        steps = _or(plan.get("steps"), [])
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise PlanError(f"resourcePlans[{urn!r}].steps is not a list of step names")
        goal = plan.get("goal")
        if goal is None:
            resources[urn] = PlannedResource(urn, None, True, tuple(steps))
            continue
        if not isinstance(goal, dict) or not isinstance(goal.get("type"), str):
            raise PlanError(f"resourcePlans[{urn!r}].goal has no type")
        diff = _or(goal.get("inputDiff"), {})
        if not isinstance(diff, dict):
            raise PlanError(f"resourcePlans[{urn!r}].goal.inputDiff is malformed")
        adds, updates = _or(diff.get("adds"), {}), _or(diff.get("updates"), {})
        deletes = _or(diff.get("deletes"), [])
        if not isinstance(adds, dict) or not isinstance(updates, dict) or not isinstance(deletes, list):
            raise PlanError(f"resourcePlans[{urn!r}].goal.inputDiff is malformed")
        resources[urn] = PlannedResource(urn, goal["type"], bool(goal.get("custom", True)), tuple(steps),
                                         adds, updates, tuple(str(d) for d in deletes))
    return ApprovedPlan(digest, resources)


def _planned_value(value: Any) -> Any:
    """A serialized plan value as a plain value, or WILDCARD where the pack cannot compare it."""
    if isinstance(value, str) and value == _UNKNOWN:
        return WILDCARD
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _OUTPUT_SIG and "value" in value and not value.get("secret"):
            return _planned_value(value["value"])
        if sig is not None:  # a secret (encrypted in the file), an unknown output, an asset, archive or reference
            return WILDCARD
        return {k: _planned_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_planned_value(v) for v in value]
    return value


def _conforms(planned: Any, actual: Any) -> bool:
    from ps019.model import contains_unknown

    if planned is WILDCARD or contains_unknown(actual):
        return True
    if isinstance(planned, bool) or isinstance(actual, bool):
        return planned is actual
    if isinstance(planned, (int, float)) and isinstance(actual, (int, float)):
        return float(planned) == float(actual)  # numbers are doubles on the wire
    if isinstance(planned, dict) and isinstance(actual, Mapping):
        return planned.keys() == actual.keys() and all(_conforms(planned[k], actual[k]) for k in planned)
    if isinstance(planned, list) and isinstance(actual, (list, tuple)):
        return len(planned) == len(actual) and all(_conforms(p, a) for p, a in zip(planned, actual))
    return planned == actual


_NO_RECORD = object()


def resource_problems(plan: ApprovedPlan, urn: str, type_: str, props: Mapping[str, Any],
                      inputs_digest: str | None = None, applied_digest: Any = _NO_RECORD) -> list[str]:
    """Why the analyzed resource does not conform to the approved plan (empty: it conforms).

    ``applied_digest``: for a resource the plan leaves unchanged, the inputs digest of its last recorded deployment
    (a string), ``None`` when no record has it, or a string starting with ``"unreadable:"`` when the store could not be
    read; leave it out when the caller has not looked."""
    planned = plan.resources.get(urn)
    if planned is None:
        return [f"{urn} is not in the approved plan ({len(plan.resources)} resources): the approvers never saw it"]
    if planned.deleted:
        return [f"{urn}: the approved plan deletes it, but the program still declares it"]
    problems: list[str] = []
    if planned.type != type_:
        problems.append(f"{urn}: the approved plan has type {planned.type}, this run {type_}")
    if planned.unchanged:
        if applied_digest is _NO_RECORD:
            pass
        elif applied_digest is None:
            problems.append(f"{urn}: the approved plan leaves it unchanged, but no earlier update record in the "
                            "evidence store holds its inputs, so that cannot be checked")
        elif isinstance(applied_digest, str) and applied_digest.startswith("unreadable:"):
            problems.append(f"{urn}: the approved plan leaves it unchanged, and its last recorded inputs cannot be "
                            f"read ({applied_digest.removeprefix('unreadable:').strip()})")
        elif inputs_digest != applied_digest:
            problems.append(f"{urn}: the approved plan leaves it unchanged, but its inputs differ from its last "
                            "recorded deployment")
        return problems
    expected = {**planned.adds, **planned.updates}
    changed = sorted(k for k, v in expected.items() if k not in props or not _conforms(_planned_value(v), props[k]))
    if changed:
        problems.append(f"{urn}: input(s) {', '.join(changed)} differ from the approved plan")
    kept = sorted(k for k in planned.deletes if k in props)
    if kept:
        problems.append(f"{urn}: the approved plan removes input(s) {', '.join(kept)}, but this run sets them")
    if planned.creates:
        extra = sorted(k for k in props if k not in expected)
        if extra:
            problems.append(f"{urn}: input(s) {', '.join(extra)} are not in the approved plan's create")
    return problems


PLAN_CONFORMANCE = "PS019-GATE-020"
CLAUSE = ("PS-019 release gates: release approval is tied to explicit evidence (the approved plan), not to what "
          "the deployer runs instead")


def plan_violations(decision: Any, view: Any, applied: Mapping[str, str] | str | None) -> list:
    """PS019-GATE-020 for one analyzed resource (``ps019.model.ResourceView``) under ``decision.bound_plan``.

    ``applied``: the inputs digest of each resource's last recorded deployment (``urn -> digest``), or why the
    evidence store could not be read (a string); ``None`` when nobody looked (unchanged resources go unchecked)."""
    from ps019.model import Violation

    plan: ApprovedPlan | None = getattr(decision, "bound_plan", None)
    if plan is None:
        return []
    planned = plan.resources.get(view.urn)
    applied_digest: Any = _NO_RECORD
    digest = None
    if planned is not None and planned.unchanged and applied is not None:
        applied_digest = f"unreadable: {applied}" if isinstance(applied, str) else applied.get(view.urn)
        from ps019.digest import inputs_digest

        digest = getattr(view, "inputs_digest", None) or inputs_digest(view.props, view.secret_paths)
    problems = resource_problems(plan, view.urn, view.type, view.props, inputs_digest=digest, applied_digest=applied_digest)
    ticket = ((getattr(decision, "presented", None) or {}).get("change_request") or {}).get("ticket", "?")
    details = {"advisory": True} if getattr(decision, "enforcement", "mandatory") != "mandatory" else {}
    return [Violation(f"{problem}; change request {ticket} approves plan {plan.digest}"
                      f"{getattr(decision, 'tier_note', '')}. Fix: deploy exactly the approved plan (`pulumi up "
                      "--plan FILE` with the approved plan file), or make a new plan (`pulumi preview --save-plan "
                      f"FILE`), bind it (`ps019 change-request new --plan-file FILE`) and have it approved [{CLAUSE}]",
                      urn=view.urn, details=dict(details)) for problem in problems]
