"""Read a ``pulumi stack export`` file (deployment v3/v4) or a DIY backend checkpoint into engine resources.

What the engine's ``pulumi policy analyze --file`` does with it: every resource not marked ``delete`` is analyzed
with its ``inputs``, and AnalyzeStack gets the ``outputs``. Secrets stay secrets: ``plaintext`` (an export made with
``--show-secrets``) is decoded, ``ciphertext`` cannot be decrypted offline and becomes ``Secret("[secret]")`` with a
warning, as the CLI does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import structlog

from ps019.engine.resources import (
    CustomTimeouts,
    EngineResource,
    StackRef,
    parse_provider_reference,
    parse_urn,
)
from ps019.engine.values import SECRET_SIG, SECRET_TEXT, SIG_KEY, Secret, decode_wire
from ps019.errors import InputError

log = structlog.get_logger(__name__)

SUPPORTED_VERSIONS = (3, 4)


@dataclass
class StackExport:
    """The resources of an export in state order (which is registration order), plus what was lossy."""

    path: str
    project: str
    stack: str
    resources: list[EngineResource]
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[EngineResource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)


def load_stack_export(path: str | Path, stack: StackRef | str | None = None) -> StackExport:
    """Load ``path``; when ``stack`` is given the export must be for that project and stack."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"stack export {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read stack export {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"stack export {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    deployment = _deployment_of(document, path)
    raw_resources = deployment.get("resources") or []
    if not isinstance(raw_resources, list):
        raise InputError(f"stack export {path}: 'resources' is not a list")

    ciphertexts = [0]
    resources: list[EngineResource] = []
    for index, raw in enumerate(raw_resources):
        if not isinstance(raw, dict):
            raise InputError(f"stack export {path}: resource #{index} is not an object")
        if raw.get("delete"):
            continue  # pending deletion: the engine does not analyze it
        resources.append(_resource_from_state(raw, index, path, ciphertexts))

    project, stack_name = _stack_of(resources, path)
    if stack is not None:
        wanted = StackRef.parse(stack) if isinstance(stack, str) else stack
        if resources and (project, stack_name) != (wanted.project, wanted.stack):
            raise InputError(f"export is for stack {project}/{stack_name}, not {wanted.project}/{wanted.stack}")
        project, stack_name = wanted.project, wanted.stack

    _check_references(resources, path)
    warnings = []
    if ciphertexts[0]:
        warnings.append(f"{ciphertexts[0]} secret value(s) in {path.name} are encrypted and cannot be decrypted "
                        f"offline; policies see {SECRET_TEXT!r} instead (export with --show-secrets to analyze them)")
        log.warning("encrypted secrets replaced", path=str(path), count=ciphertexts[0])
    return StackExport(str(path), project, stack_name, resources, warnings)


def _deployment_of(document: Any, path: Path) -> dict:
    if not isinstance(document, dict):
        raise InputError(f"stack export {path} is not a JSON object")
    if isinstance(document.get("checkpoint"), dict):  # DIY backend checkpoint file
        deployment = document["checkpoint"].get("latest") or {}
    elif "deployment" in document:
        deployment = document["deployment"]
    else:
        raise InputError(f"stack export {path} has neither 'deployment' nor 'checkpoint' (not a pulumi stack export)")
    version = document.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise InputError(f"stack export {path} has deployment version {version!r}; supported: 3 and 4")
    if not isinstance(deployment, dict):
        raise InputError(f"stack export {path}: 'deployment' is not an object")
    return deployment


def _resource_from_state(raw: dict, index: int, path: Path, ciphertexts: list[int]) -> EngineResource:
    urn, rtype = raw.get("urn"), raw.get("type")
    if not isinstance(urn, str) or not isinstance(rtype, str):
        raise InputError(f"stack export {path}: resource #{index} has no urn or type")
    try:
        parse_urn(urn)
        provider = parse_provider_reference(raw["provider"])[0] if raw.get("provider") else None
    except InputError as exc:
        raise InputError(f"stack export {path}: resource {urn}: {exc}") from None
    timeouts = raw.get("customTimeouts") or {}
    return EngineResource(
        urn=urn,
        type=rtype,
        inputs=_state_values(raw.get("inputs") or {}, ciphertexts),
        outputs=_state_values(raw.get("outputs") or {}, ciphertexts),
        custom=bool(raw.get("custom", False)),
        id=str(raw.get("id") or ""),
        parent=raw.get("parent") or None,
        provider=provider,
        dependencies=list(raw.get("dependencies") or []),
        property_dependencies={k: list(v) for k, v in (raw.get("propertyDependencies") or {}).items() if v},
        protect=bool(raw.get("protect", False)),
        ignore_changes=list(raw.get("ignoreChanges") or []),
        additional_secret_outputs=list(raw.get("additionalSecretOutputs") or []),
        aliases=[a for a in (raw.get("aliases") or []) if isinstance(a, str)],
        custom_timeouts=CustomTimeouts(**{k: float(timeouts.get(k) or 0) for k in ("create", "update", "delete")}),
    )


def _state_values(value: Any, ciphertexts: list[int]) -> Any:
    """State encoding -> engine values. Secrets in state carry ``plaintext`` (JSON text) or ``ciphertext``."""
    if isinstance(value, list):
        return [_state_values(v, ciphertexts) for v in value]
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            if "plaintext" in value:
                try:
                    return Secret(_state_values(decode_wire(json.loads(value["plaintext"])), ciphertexts))
                except (TypeError, json.JSONDecodeError):
                    raise InputError("a secret's plaintext in the export is not JSON-encoded") from None
            if "ciphertext" in value:
                ciphertexts[0] += 1
                return Secret(SECRET_TEXT)
            if "value" in value:
                return Secret(_state_values(value["value"], ciphertexts))
        return {k: _state_values(v, ciphertexts) for k, v in value.items()} if value.get(SIG_KEY) is None \
            else decode_wire(value)
    return decode_wire(value)


def _stack_of(resources: list[EngineResource], path: Path) -> tuple[str, str]:
    names = {parse_urn(r.urn)[:2] for r in resources}
    if len(names) > 1:
        raise InputError(f"stack export {path} mixes resources of several stacks: "
                         + ", ".join(sorted(f"{p}/{s}" for s, p in names)))
    if not names:
        return "", ""
    stack_name, project = names.pop()
    return project, stack_name


def _check_references(resources: list[EngineResource], path: Path) -> None:
    known = {r.urn: r for r in resources}
    for r in resources:
        if r.provider is not None:
            provider = known.get(r.provider)
            if provider is None or not provider.is_provider:
                raise InputError(f"stack export {path}: {r.urn} refers to provider {r.provider}, "
                                 "which is not a provider in the export")
