"""What the stand-in engine analyzes: a stack reference and resources in registration order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ps019.errors import InputError

STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class StackRef:
    """``organization/project/stack``. The organization may be empty (DIY backends have none)."""

    organization: str
    project: str
    stack: str

    @classmethod
    def parse(cls, text: str) -> "StackRef":
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) == 2:
            parts = ["", *parts]
        if len(parts) != 3 or not all(_NAME.match(p) for p in parts[1:]) or (parts[0] and not _NAME.match(parts[0])):
            raise InputError(f"stack {text!r} is not of the form ORGANIZATION/PROJECT/STACK")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.organization}/{self.project}/{self.stack}" if self.organization else f"{self.project}/{self.stack}"

    @property
    def root_urn(self) -> str:
        """The URN of the root ``pulumi:pulumi:Stack`` resource the engine registers for this stack."""
        return make_urn(self.stack, self.project, STACK_TYPE, f"{self.project}-{self.stack}")


def make_urn(stack: str, project: str, qualified_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{qualified_type}::{name}"


def parse_urn(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name). The name may itself contain ``::``."""
    if not isinstance(urn, str) or not urn.startswith("urn:pulumi:"):
        raise InputError(f"{urn!r} is not a Pulumi URN")
    parts = urn[len("urn:pulumi:"):].split("::", 3)
    if len(parts) != 4:
        raise InputError(f"{urn!r} is not a Pulumi URN")
    return parts[0], parts[1], parts[2], parts[3]


def urn_name(urn: str) -> str:
    return parse_urn(urn)[3]


def urn_type(urn: str) -> str:
    """The resource's own type (last segment of the qualified type)."""
    return parse_urn(urn)[2].split("$")[-1]


def parse_provider_reference(ref: str) -> tuple[str, str]:
    """``"<provider urn>::<id>"`` -> (urn, id)."""
    if not isinstance(ref, str) or "::" not in ref:
        raise InputError(f"provider reference {ref!r} is not of the form URN::ID")
    urn, _, ref_id = ref.rpartition("::")
    parse_urn(urn)
    return urn, ref_id


@dataclass
class CustomTimeouts:
    create: float = 0.0
    update: float = 0.0
    delete: float = 0.0
    read: float = 0.0


@dataclass
class EngineResource:
    """One resource as the engine holds it.

    ``inputs`` go to Remediate/Analyze, ``outputs`` to AnalyzeStack (both hold engine-side values: plain JSON plus
    :class:`~ps019.engine.values.Secret` and typed unknowns). ``provider`` is the provider resource's URN (resolved
    from the ``urn::id`` reference), ``None`` for the stack, providers and components.
    """

    urn: str
    type: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    custom: bool = True
    id: str = ""
    parent: str | None = None
    provider: str | None = None
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool | None = None
    additional_secret_outputs: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    custom_timeouts: CustomTimeouts = field(default_factory=CustomTimeouts)

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith(PROVIDER_TYPE_PREFIX)

    @property
    def is_stack(self) -> bool:
        return self.type == STACK_TYPE

    def __repr__(self) -> str:  # inputs/outputs may hold secrets; keep them out of reprs
        return f"EngineResource(urn={self.urn!r})"
