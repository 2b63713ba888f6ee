"""Loads the JSON fixtures kept beside the IAM and identity controls (used by their tests and the docs).

Layout: ``<area>/fixtures/<module>/<expect>/<case>.json`` where ``expect`` is

* ``allow``        - the control reports nothing;
* ``deny``         - at least one violation, none of them "unverifiable";
* ``error``        - at least one violation, each about an unusable document or identity (``details`` has ``error``);
* ``unverifiable`` - at least one violation, each marked ``details["unverifiable"]`` (reported advisory in preview);
* ``advisory``     - at least one violation, each marked ``details["advisory"]`` (reported advisory; e.g. a
                     confused-deputy risk).

A ``deny`` case may also carry advisory violations beside its mandatory one.

A case file::

    {
      "description": "why this case matters",
      "type": "aws:iam/role:Role",
      "name": "deployer",                                  # optional
      "props": {...},                                      # the property bag as the engine sends it
      "secret_paths": [["accessKey"]],                     # optional
      "context": {"tier": "production", "dry_run": true,   # optional RunContext fields, plus
                  "deploy_identity": {...},                #   DeployIdentity.to_evidence() shape
                  "settings": {"identity": {...}}},        #   the ps019-settings mapping
      "params": {...},                                     # optional control parameters
      "message_contains": ["AdministratorAccess"]          # optional substrings every violation must hold
    }

A resource control that joins a resource with ones analysed before it in the pass (an attachment with its role) reads
them from ``"earlier": [{"type", "name", "props"}, ...]`` (``RunContext.seen``); without ``earlier`` the context has
an empty pass.

A case for a stack-scope control lists ``"resources": [{"type", "name", "props", "dependencies"}, ...]`` instead of
``type``/``props``; the control receives all of them.

The engine's unknown sentinel ``04da6b54-80e4-46f7-96ec-b56ff0331ba9`` anywhere in ``props`` becomes ``UNKNOWN``.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ps019.controls.base import Control, RunContext
from ps019.model import UNKNOWN, ResourceView, SeenResources, Violation

UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
EXPECTATIONS = ("allow", "deny", "error", "unverifiable", "advisory")


@dataclass(frozen=True)
class FixtureCase:
    path: Path
    control: Control
    expect: str
    view: ResourceView
    ctx: RunContext
    params: Mapping[str, Any]
    message_contains: tuple[str, ...] = ()
    description: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)
    views: tuple[ResourceView, ...] = ()  # stack-scope cases: every resource

    @property
    def id(self) -> str:
        return f"{self.path.parent.parent.name}/{self.expect}/{self.path.stem}"

    def run(self) -> list[Violation]:
        subject = self.views if self.control.scope == "stack" else self.view
        return list(self.control.check(subject, self.ctx, self.control.params(self.params)) or ())


def load_cases(package: str) -> list[FixtureCase]:
    """Every case beside the controls of ``package`` (e.g. ``"ps019.controls.iam"``)."""
    root = Path(importlib.import_module(package).__file__).parent / "fixtures"
    cases: list[FixtureCase] = []
    for module_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        control = importlib.import_module(f"{package}.{module_dir.name}").CONTROL
        for expect in EXPECTATIONS:
            for path in sorted((module_dir / expect).glob("*.json")):
                cases.append(load_case(path, control, expect))
    return cases


def _view(raw: Mapping[str, Any], default_name: str) -> ResourceView:
    name = raw.get("name", default_name)
    return ResourceView(
        urn=f"urn:pulumi:prod::example::{raw['type']}::{name}",
        type=raw["type"],
        name=name,
        props=_unknowns(raw.get("props", {})),
        secret_paths=frozenset(tuple(p) for p in raw.get("secret_paths", ())),
        dependencies=tuple(raw.get("dependencies", ())),
    )


def load_case(path: Path, control: Control, expect: str) -> FixtureCase:
    raw = json.loads(path.read_text())
    views = tuple(_view(r, f"{path.stem}-{i}") for i, r in enumerate(raw.get("resources", ())))
    view = views[0] if views else _view(raw, path.stem)
    earlier = tuple(_view(r, f"{path.stem}-earlier-{i}") for i, r in enumerate(raw.get("earlier", ())))
    return FixtureCase(
        path=path, control=control, expect=expect, view=view, ctx=_context(raw.get("context", {}), earlier),
        params=raw.get("params", {}), message_contains=tuple(raw.get("message_contains", ())),
        description=raw.get("description", ""), raw=raw, views=views or (view,),
    )


def _context(data: Mapping[str, Any], earlier: tuple[ResourceView, ...] = ()) -> RunContext:
    identity = data.get("deploy_identity")
    if identity is not None:
        from ps019.iam.deploy_identity import DeployIdentity

        identity = DeployIdentity.from_mapping(identity)
    settings = data.get("settings")
    if settings is not None:
        from ps019.pack.settings import Settings

        settings = Settings(raw=settings)
    return RunContext(
        organization=data.get("organization", "acme"), project=data.get("project", "example"),
        stack=data.get("stack", "prod"), dry_run=bool(data.get("dry_run", False)),
        tier=data.get("tier", "production"), deploy_identity=identity, settings=settings,
        seen=SeenResources(earlier),
    )


def _unknowns(value: Any) -> Any:
    if value == UNKNOWN_SENTINEL:
        return UNKNOWN
    if isinstance(value, dict):
        return {k: _unknowns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknowns(v) for v in value]
    return value
