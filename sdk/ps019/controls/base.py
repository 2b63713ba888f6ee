"""What a control is: stable metadata in one place plus a pure check function.

A resource control::

    CONTROL = Control(
        id="PS019-IAM-001",
        title="IAM identity policies grant least privilege",
        clause="PS-019 §3 managed identities with least privilege",
        severity=Severity.HIGH,
        level=Level.MANDATORY,
        rationale="...",
        remediation="...",
        resource_types=("aws:iam/policy:Policy", ...),
        check=check,                  # (ResourceView, RunContext, params) -> Iterable[Violation]
    )

A stack control sets ``scope="stack"`` and its check receives the tuple of all resources (outputs) instead of one.
A findings control sets ``scope="findings"``: it runs after the others, once per resource (and once for the stack
results), over the ``Diagnostic``s the other controls produced there — e.g. the escalation rule, which asks whether a
finding above the delegated severity has a security approver.
``params`` are the control's configured properties (``--policy-pack-config``), validated by its config model.

A control with parameters names a pydantic model of them, ``config_model="ps019.controls.<area>.config:Model"``: the
model is the one definition of the parameters, their types, enums, defaults and descriptions. The policy's JSON Schema
(what the engine validates before ``Configure``), ``ps019 pack validate-config``, the catalogue in docs/controls.md and
the params a check receives are all generated from it. It is named by a string and imported on first use, because the
pack's start-up imports every control module and must not pay for pydantic (``config`` modules are not controls: the
registry skips them).

Not applicable: the engine counts every enabled policy as *passed* on a resource unless it failed or the pack said it
did not apply (pulumi ``pkg/resource/analyzer/summary.go``). The adapter reports not-applicable, with the reason,
generically from the declaration: a resource type outside ``resource_types``; a findings control with no findings; a
``deployment_only`` control under ``pulumi policy analyze`` (no deployment to check). A check that decides it does not
apply (wrong tier, nothing configured) raises ``NotApplicable("why")``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

from ps019.model import Level, ResourceView, Severity, Violation

# Where the control catalogue lives, relative to the ps019 repository (the project has no public web address yet;
# Pulumi Cloud shows the URL as given).
CONTROLS_DOC_URL = "docs/controls.md"


class NotApplicable(Exception):
    """Raised by a check when the control does not apply to this resource or run; the reason reaches the engine
    (and ``pulumi policy compliance``) instead of a silent pass."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RunContext:
    """Facts about the current engine pass, gathered once by the adapter (the edges did the I/O)."""

    organization: str
    project: str
    stack: str
    dry_run: bool
    tier: str = "unknown"  # production | staging | development | unknown (see ps019.gate.classify)
    tier_source: str = "default"
    stack_config: Mapping[str, str] = field(default_factory=dict)
    stack_tags: Mapping[str, str] = field(default_factory=dict)
    now: datetime | None = None
    # Filled by the edges and consumed by controls; each is a plain object from its own package:
    gate: Any = None  # ps019.gate decision for this run (computed once)
    deploy_identity: Any = None  # ps019.aws identity facts (STS caller, its policies' analysis)
    settings: Any = None  # ps019.pack.settings.Settings
    history: Any = None  # ps019.pack.facts.History: facts read from the evidence store (promotion, preview link)
    # ps019.model.SeenResources: resources of the types controls join on (``Control.joins``), analysed earlier in this
    # pass; None outside the pack (a control then sees only the resource itself)
    seen: Any = None

    @property
    def stack_ref(self) -> str:
        return f"{self.organization}/{self.project}/{self.stack}"

    @property
    def is_production(self) -> bool:
        return self.tier == "production"


def views_of_type(resources: Sequence[ResourceView], types: Iterable[str]) -> list[ResourceView]:
    """The resources of a stack control's input whose type is in ``types``, in stack order. The adapter's lazy
    sequence converts only those resources (``of_type``); a plain sequence (tests, fixtures) is filtered. A stack
    control that reads a few types should use this instead of iterating every resource."""
    wanted = frozenset(types)
    pick = getattr(resources, "of_type", None)
    if pick is not None:
        return list(pick(wanted))
    return [r for r in resources if r.type in wanted]


ResourceCheck = Callable[[ResourceView, RunContext, Mapping[str, Any]], Iterable[Violation]]
StackCheck = Callable[[Sequence[ResourceView], RunContext, Mapping[str, Any]], Iterable[Violation]]


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    clause: str
    severity: Severity
    level: Level
    rationale: str
    remediation: str
    check: Callable[..., Iterable[Violation]]
    scope: Literal["resource", "stack", "findings"] = "resource"
    # None = every resource type (including pulumi:pulumi:Stack and providers).
    resource_types: tuple[str, ...] | None = None
    # The control's parameters: "module:Model", a pydantic model (see the module docstring). None = no parameters.
    config_model: str | None = None
    # Checks the deployment itself (who deploys, from where, under which change request, its evidence): there is none
    # under `pulumi policy analyze`, so the control is reported not applicable there.
    deployment_only: bool = False
    display_name: str | None = None  # shown by Pulumi Cloud; default "<id>: <title>"
    # Resource types whose earlier views in the pass the check reads through ``ctx.seen`` (an attachment's role).
    joins: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """The control's entry in the catalogue (docs/controls.md anchors are the lower-cased IDs)."""
        return f"{CONTROLS_DOC_URL}#{self.id.lower()}"

    def applies_to(self, resource_type: str) -> bool:
        return self.resource_types is None or resource_type in self.resource_types

    def config_model_class(self) -> Any:
        """The pydantic model named by ``config_model`` (imported now), or None."""
        if self.config_model is None:
            return None
        module_name, _, name = self.config_model.partition(":")
        return getattr(importlib.import_module(module_name), name)

    def params(self, configured: Mapping[str, Any] | None) -> dict[str, Any]:
        """The configured properties validated by the config model, defaults filled in (plain JSON values, keyed as
        in the policy pack config). Raises :class:`ConfigInvalid` naming every problem (never a value)."""
        given = {k: v for k, v in (configured or {}).items() if k != "enforcementLevel"}
        model = self.config_model_class()
        if model is None:
            return given
        import pydantic

        try:
            return model.model_validate(given).model_dump(mode="json")
        except pydantic.ValidationError as exc:
            from ps019.errors import validation_problems

            raise ConfigInvalid(self.id, validation_problems(exc, self.id)) from None


class ConfigInvalid(ValueError):
    """A control's configured properties break its config model; ``problems`` are ``"<id>.<where>: <what>"``."""

    def __init__(self, control_id: str, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.control_id = control_id
        self.problems = problems
