"""Which stack and which kind of run: the facts the engine's ConfigureStack carries.

Since pulumi v3.170 the engine sends ConfigureStack (stack, project, organization, dry_run; config since v3.174, tags
since v3.186) to every analyzer before anything else, whenever it runs a stack (preview, up). The ``PULUMI_*``
variables are only what the Python language host's legacy PolicyProxy derives from it, and the CLI's own environment
is appended after them (``pulumi-language-python`` RunPlugin), so a deployer's ``PULUMI_STACK=dev`` or
``PULUMI_DRY_RUN=true`` would override the engine's word. ps019 therefore takes every fact ConfigureStack has, and the
variables only for a field an older engine does not send; ``sources`` says where each field came from.

No ConfigureStack at all means ``pulumi policy analyze`` (v3.229+) or ``pulumi policy publish``: the packs are loaded
without stack options. Then the run is an analysis of existing state, not a deployment: ps019 reports its findings,
treats it as a preview (nothing is blocked), and writes no update or blocked evidence record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

CONFIGURE_STACK = "ConfigureStack"
ENVIRONMENT = "environment"
NONE = "none"


@dataclass(frozen=True)
class StackFacts:
    organization: str
    project: str
    stack: str
    dry_run: bool
    config: Mapping[str, str] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str = NONE  # ConfigureStack | environment (an engine that sends none) | none (analysis only)
    sources: Mapping[str, str] = field(default_factory=dict)  # field -> ConfigureStack | environment | default

    @property
    def analysis_only(self) -> bool:
        return self.source == NONE

    def describe(self) -> str:
        if self.analysis_only:
            return ("analysis only: the engine sent no ConfigureStack (`pulumi policy analyze`), so this is not a "
                    "deployment; findings are reported, nothing is blocked and no evidence record is written")
        fallbacks = sorted(k for k, v in self.sources.items() if v != CONFIGURE_STACK)
        suffix = f" ({', '.join(fallbacks)} from the environment: an engine older than the field)" if fallbacks else ""
        return f"stack facts from {self.source}{suffix}"


def from_configure_stack(request: Any, environ: Mapping[str, str]) -> StackFacts:
    """The engine's ConfigureStack, with a ``PULUMI_*`` fallback only for fields an older engine leaves empty.

    Organization, project and stack are in every ConfigureStack: an empty one (a backend without an organization) gets
    pulumi's default, never a variable. The proxy derives its variables from this very message, so a
    ``PULUMI_ORGANIZATION`` the pack sees next to an empty field can only be the deployer's own, choosing which
    stack's requests, grants and evidence chain the gate reads."""
    sources: dict[str, str] = {}

    def pick(name: str, value: str, default: str) -> str:
        if value:
            sources[name] = CONFIGURE_STACK
            return value
        sources[name] = "default"
        return default

    organization = pick("organization", request.organization, "organization")
    project = pick("project", request.project, "project")
    stack = pick("stack", request.stack, "stack")
    sources["dry_run"] = CONFIGURE_STACK  # a bool on the wire: never taken from a variable the deployer sets
    config = dict(request.config)
    if config:
        sources["config"] = CONFIGURE_STACK
    else:
        config = config_from_environment(environ)
        sources["config"] = ENVIRONMENT if config else CONFIGURE_STACK
    return StackFacts(organization=organization, project=project, stack=stack, dry_run=bool(request.dry_run),
                      config=config, secret_keys=frozenset(request.config_secret_keys), tags=dict(request.tags),
                      source=CONFIGURE_STACK, sources=sources)


def from_environment(environ: Mapping[str, str], tags: Mapping[str, str] | None = None) -> StackFacts:
    """No ConfigureStack: an engine older than v3.170 sets the variables; with none of them, this is an analysis."""
    if not (environ.get("PULUMI_STACK") or environ.get("PULUMI_PROJECT")):
        return StackFacts(organization="organization", project="project", stack="stack", dry_run=True,
                          tags=dict(tags or {}), source=NONE, sources={})
    return StackFacts(
        organization=environ.get("PULUMI_ORGANIZATION") or "organization",
        project=environ.get("PULUMI_PROJECT") or "project",
        stack=environ.get("PULUMI_STACK") or "stack",
        dry_run=environ.get("PULUMI_DRY_RUN", "false") == "true",
        config=config_from_environment(environ),
        tags=dict(tags or {}),
        source=ENVIRONMENT,
        sources={k: ENVIRONMENT for k in ("organization", "project", "stack", "dry_run", "config")},
    )


def config_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    raw = environ.get("PULUMI_CONFIG")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


# --- offline runs ---------------------------------------------------------------------------------------------------

OFFLINE_ENV_VAR = "PS019_OFFLINE_RUN"


@dataclass(frozen=True)
class OfflineMarker:
    """What ps019's engine stand-in says about an offline run (``PS019_OFFLINE_RUN``, JSON): which command drove it,
    from what input, and which values were offline placeholders."""

    engine: str
    source: str | None = None
    placeholders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def offline_marker(environ: Mapping[str, str], engine_address: str | None) -> tuple[OfflineMarker | None, str | None]:
    """(the run's offline marker, a note when a marker was refused).

    The stand-in starts packs with the engine address ``127.0.0.1:0`` (port 0: there is no engine to call back); the
    Pulumi CLI passes its own gRPC server's address, which always has a real port. A marker is honoured only with the
    stand-in's address: a deployer who sets ``PS019_OFFLINE_RUN`` in a real ``pulumi up`` cannot make the deployment's
    record look like an offline run (and so drop it from every deployment count); the record names the refusal. A
    marker that cannot be parsed still marks the run offline (the stand-in wrote it), with what could be read."""
    raw = environ.get(OFFLINE_ENV_VAR)
    if raw is None:
        return None, None
    if not is_stand_in_address(engine_address):
        return None, (f"{OFFLINE_ENV_VAR} was set, but the pack was started by an engine at {engine_address!r}, not "
                      "by the offline stand-in: the run is recorded as a deployment")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return OfflineMarker(engine=f"unknown offline driver (unreadable {OFFLINE_ENV_VAR})"), None
    placeholders: dict[str, tuple[str, ...]] = {}
    for kind, items in (value.get("placeholders") or {}).items() if isinstance(value.get("placeholders"), dict) \
            else ():
        if isinstance(items, list):
            placeholders[str(kind)] = tuple(str(i) for i in items)
    source = value.get("source")
    return OfflineMarker(engine=str(value.get("engine") or "ps019 engine stand-in"),
                         source=str(source) if source is not None else None, placeholders=placeholders), None


def is_stand_in_address(engine_address: str | None) -> bool:
    return bool(engine_address) and engine_address.rsplit(":", 1)[-1] == "0"
