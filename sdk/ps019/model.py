"""Plain data shared by controls, the pack adapter, the engine stand-in and the evidence record.

Controls are pure functions over these types: no gRPC, no I/O. The adapter (``ps019.pack``) turns the
engine's wire format into them once per resource; the stand-in (``ps019.engine``) produces the wire format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


class Level(str, enum.Enum):
    """Pulumi enforcement levels (values are the strings Pulumi's policy config uses)."""

    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    DISABLED = "disabled"
    REMEDIATE = "remediate"


class Severity(str, enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class Unknown:
    """A value the engine cannot know during preview (it sends a sentinel string on the wire)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str = "string") -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<unknown {self.kind}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown)

    def __hash__(self) -> int:
        return hash(Unknown)


UNKNOWN = Unknown()


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


def contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


Path = tuple  # a path into a property bag: ("tags", "owner") or ("ingress", 0, "cidrBlocks")

SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class ResourceView:
    """One resource as a control sees it.

    ``props`` holds plain Python values: secrets are unwrapped (as pulumi_policy delivers them) and their paths are
    listed in ``secret_paths`` so that evidence and messages can redact them; values unknown during preview are
    ``UNKNOWN``. Numbers are floats, as on the wire.
    """

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    secret_paths: frozenset = frozenset()
    provider: "ResourceView | None" = None
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    custom: bool = True
    # Set by the adapter when it could take the evidence digest straight from the wire bytes (no secret, no unknown).
    inputs_digest: str | None = None

    def redacted_props(self) -> dict[str, Any]:
        """The property bag with every secret value replaced by ``[secret]`` (safe for logs and evidence)."""
        return redact(self.props, self.secret_paths)

    def is_secret(self, path: Path) -> bool:
        return any(path[: len(p)] == p for p in self.secret_paths)


class SeenResources:
    """The resources analysed earlier in this engine pass, of the types some control joins on (``Control.joins``).

    The engine analyses a resource only after everything it depends on has been registered (and analysed), so when
    an attachment that names ``role.name`` is analysed, its role is already here. Filled by the pack adapter after
    each Analyze; controls only read it (``RunContext.seen``)."""

    def __init__(self, views: "Iterable[ResourceView]" = ()) -> None:
        self._by_type: dict[str, dict[str, ResourceView]] = {}
        for view in views:
            self.add(view)

    def add(self, view: "ResourceView") -> None:
        self._by_type.setdefault(view.type, {})[view.urn] = view  # a second Analyze of a URN replaces the first

    def of_type(self, *types: str) -> list["ResourceView"]:
        return [v for t in types for v in self._by_type.get(t, {}).values()]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_type.values())


def redact(props: Mapping[str, Any], secret_paths: frozenset) -> dict[str, Any]:
    if not secret_paths:
        return _plain(props)
    out = _plain(props)
    for path in secret_paths:
        _replace_at(out, path)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Unknown):
        return "[unknown]"
    return value


def _replace_at(tree: Any, path: tuple) -> None:
    if not path:
        return
    node = tree
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    try:
        node[path[-1]] = SECRET_PLACEHOLDER
    except (KeyError, IndexError, TypeError):
        return


@dataclass(frozen=True)
class Violation:
    """What a control reports. ``urn`` defaults to the resource being checked (or the stack for stack controls)."""

    message: str
    urn: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Diagnostic:
    """A violation after the adapter applied levels, exceptions and break-glass waivers (what the engine receives
    and what the evidence record keeps)."""

    control_id: str
    level: Level
    severity: Severity
    urn: str
    message: str
    resource_type: str = ""
    waived_by: str | None = None  # exception ID or break-glass grant ID that downgraded it
    # The control could not decide yet (values computed from other resources are unknown in a preview): reported
    # advisory, checked in full by the update pass, and not a risk for the escalation rule (PS019-GATE-005).
    unverifiable: bool = False
