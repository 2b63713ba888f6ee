"""Capture the resources a Pulumi Python program registers, without the CLI, a backend or a cloud account.

The program runs under ``pulumi.runtime.set_mocks`` in a child process (fresh pulumi global state per capture) with
a monitor that records every ``RegisterResource``. The mock monitor differs from the engine in ways a policy can
see, so the registrations are patched here (research "fidelity gaps"):

1. URNs: the engine's ``generateURN`` uses the parent's full qualified type and never the root stack's type.
2. Default providers: the engine registers ``pulumi:providers:<pkg>::default[_<version>]`` (inputs from the stack's
   ``<pkg>:*`` config) before the first resource that needs it, and analyzes it.
3. ``pulumi:pulumi:Stack`` comes first; empty property-dependency lists are dropped.

Preview (``dry_run=True``): ids and outputs not given as inputs are unknown. Update: ids are ``<name>-id`` and
outputs are the inputs (no provider ``Check``/``Create`` runs, so provider-side defaults are absent).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from ps019.engine.resources import (
    STACK_TYPE,
    CustomTimeouts,
    EngineResource,
    StackRef,
    make_urn,
    parse_provider_reference,
)
from ps019.engine.runner import normalise_config
from ps019.engine.values import SIG_KEY, RESOURCE_REF_SIG, Scrubber, Secret, decode_wire, unknown
from ps019.errors import InputError


@dataclass
class CapturedProgram:
    """Resources in registration order (as the engine would analyze them) plus the stack's outputs."""

    program_dir: str
    stack: StackRef
    dry_run: bool
    resources: list[EngineResource]
    stack_outputs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # effective "ns:key" config (Secret for secrets): pass
    # it on as run_pass(config=...) so the pack sees what the program saw, as the engine does
    warnings: list[str] = field(default_factory=list)
    # what the capture answered with offline stand-ins: placeholder_invokes, placeholder_outputs (resource types),
    # remote_components, missing_references
    placeholders: dict[str, list[str]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[EngineResource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def by_name(self, name: str) -> EngineResource:
        return next(r for r in self.resources if r.name == name)


def load_stack_config(program_dir: str | Path, stack: StackRef | str) -> tuple[dict[str, Any], list[str]]:
    """The plain config of ``Pulumi.<stack>.yaml`` as ``"ns:key" -> value``, and the ``secure:`` keys it holds
    (encrypted by the stack's secrets provider: they cannot be decrypted offline and must be supplied)."""
    stack = StackRef.parse(stack) if isinstance(stack, str) else stack
    path = Path(program_dir) / f"Pulumi.{stack.stack}.yaml"
    if not path.is_file():
        return {}, []
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path} cannot be read: {str(exc).splitlines()[0]}") from None
    raw = document.get("config") or {} if isinstance(document, dict) else {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: 'config' is not a mapping")
    config: dict[str, Any] = {}
    secure: list[str] = []
    for key, value in raw.items():
        full = key if ":" in key else f"{stack.project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.append(full)
        else:
            config[full] = value
    return config, secure


def capture_program(program_dir: str | Path, stack: StackRef | str, dry_run: bool,
                    config: Mapping[str, Any] | None = None, *, secret_config_keys: tuple[str, ...] = (),
                    stack_config_file: bool = True, timeout: float = 120.0,
                    invoke_results: Mapping[str, list] | str | Path | None = None,
                    stack_references: Mapping[str, Mapping[str, Any]] | None = None) -> CapturedProgram:
    """Run the program in ``program_dir`` (a directory with ``Pulumi.yaml``) as a preview or an update of
    ``stack``. ``config`` maps ``key``/``ns:key`` to values; :class:`Secret` values (and ``secret_config_keys``)
    reach the program as secret config. With ``stack_config_file``, ``Pulumi.<stack>.yaml`` supplies the rest (as
    the CLI does); its ``secure:`` values must be given in ``config``, they cannot be decrypted offline. The project's
    ``config:`` declarations fill defaults and check types; ``main:`` is honoured.

    ``invoke_results`` (a file or ``{token: [{"args", "result"}]}``) answers provider functions;
    ``stack_references`` maps a referenced stack's name to its outputs (see :mod:`ps019.engine.stack_references`)."""
    from ps019.engine.invokes import load_invoke_results
    from ps019.engine.project import apply_project_config, read_project

    stack = StackRef.parse(stack) if isinstance(stack, str) else stack
    program_dir = Path(program_dir).resolve()
    project = read_project(program_dir)
    if project.runtime != "python":
        raise InputError(f"{program_dir / 'Pulumi.yaml'}: runtime is {project.runtime!r}; only Python programs can "
                         f"be captured")
    if not project.program.is_file():
        raise InputError(f"{program_dir}: program entry point {project.program.relative_to(program_dir)} does not "
                         f"exist")
    if project.name != stack.project:
        raise InputError(f"program {program_dir} is project {project.name!r}, not {stack.project!r}")
    if isinstance(invoke_results, (str, Path)):
        invoke_results = load_invoke_results(invoke_results)
    given = {k if ":" in k else f"{stack.project}:{k}": v for k, v in (config or {}).items()}
    warnings: list[str] = []
    config = {}
    if stack_config_file:
        file_config, secure = load_stack_config(program_dir, stack)
        config.update(file_config)
        missing = [k for k in secure if k not in given]
        if missing:
            warnings.append(f"Pulumi.{stack.stack}.yaml has encrypted values the stand-in cannot decrypt: "
                            f"{', '.join(missing)} (supply them as secret config)")
        secret_config_keys = tuple(secret_config_keys) + tuple(k for k in secure if k in given)
    config.update(given)
    config = apply_project_config(project, stack.stack, config)
    wire_config = normalise_config(stack.project, config)
    secret_keys = sorted({k if ":" in k else f"{stack.project}:{k}" for k in secret_config_keys}
                         | {k if ":" in k else f"{stack.project}:{k}" for k, v in config.items()
                            if isinstance(v, Secret)}
                         | {d.key for d in project.config if d.secret})
    scrub = Scrubber([wire_config[k] for k in secret_keys if k in wire_config])

    with tempfile.TemporaryDirectory(prefix="ps019-capture-") as tmp:
        request_path, result_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_path.write_text(json.dumps({
            "program_root": str(program_dir), "cwd": str(project.cwd), "program": str(project.program),
            "project": stack.project, "stack": stack.stack,
            "organization": stack.organization, "dry_run": dry_run, "config": wire_config,
            "secret_keys": secret_keys, "invoke_results": dict(invoke_results or {}),
            "stack_references": {k: dict(v) for k, v in (stack_references or {}).items()}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG")}
        try:
            proc = subprocess.run([sys.executable, "-m", "ps019.engine.capture_worker", str(request_path),
                                   str(result_path)], cwd=project.cwd, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputError(f"program {program_dir} did not finish within {timeout:g}s under mocks") from None
        if not result_path.exists():
            tail = [line for line in proc.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            raise InputError(f"program {program_dir} could not be run (status {proc.returncode}): "
                             f"{scrub(tail[-1].strip()) if tail else 'no output'}"[:400])
        raw = json.loads(result_path.read_text())
    if raw["error"]:
        where = f" at {raw['location']}" if raw.get("location") else ""
        raise InputError(f"program {program_dir} failed{where}: {scrub(raw['error'])}")
    captured = _patch(raw, stack, dry_run, wire_config, set(secret_keys), str(program_dir))
    captured.config = {k: Secret(v) if k in secret_keys and not isinstance(v, Secret) else v
                       for k, v in config.items()}
    captured.warnings = warnings + capture_warnings(raw.get("notes") or {}, raw.get("unshaped") or [], dry_run)
    captured.placeholders = {k: list(v) for k, v in (raw.get("notes") or {}).items()}
    return captured


def capture_warnings(notes: Mapping[str, list[str]], unshaped: list[str], dry_run: bool) -> list[str]:
    """The advisories a capture owes its reader: what was answered with offline placeholders and what was not
    analysed at all."""
    out = []
    for component in notes.get("remote_components", []):
        out.append(f"{component} is a remote component implemented by its provider plugin; it cannot be expanded "
                   f"offline, so its child resources (and any IAM in them) were not analysed")
    for name in notes.get("missing_references", []):
        if dry_run:
            out.append(f"stack reference {name!r} was not supplied: its outputs are unknown in this preview "
                       f"(supply them with --stack-reference {name}=OUTPUTS.json)")
        else:
            out.append(f"stack reference {name!r} was not supplied: its outputs are offline placeholders in this "
                       f"update, so values derived from them were not checked (supply them with "
                       f"--stack-reference {name}=OUTPUTS.json)")
    for token in notes.get("placeholder_invokes", []):
        out.append(f"offline placeholder: {token} was answered with deterministic values shaped by its declared "
                   f"result type, not by AWS (supply real answers with --invoke-results FILE)")
    if notes.get("placeholder_outputs") and not dry_run:
        out.append(f"offline placeholder: computed outputs (ids, ARNs, DNS names) of "
                   f"{len(notes['placeholder_outputs'])} resource type(s) are deterministic stand-ins for the "
                   f"fixed account {_account()}, not values a provider returned")
    for item in unshaped:
        out.append(f"offline placeholder: {item} could not be shaped offline and was left unset")
    return out


def _account() -> str:
    from ps019.engine.placeholders import ACCOUNT

    return ACCOUNT


def _go_duration_seconds(text: str) -> float:
    if not text:
        return 0.0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|us|µs|ns|h|m|s)", text):
        total += float(number) * units[unit]
    return total


def _default_provider_name(version: str) -> str:
    return "default" if not version else "default_" + re.sub(r"[^A-Za-z0-9_]", "_", version)


def _patch(raw: dict, stack: StackRef, dry_run: bool, wire_config: dict[str, str], secret_keys: set[str],
           program_dir: str) -> CapturedProgram:
    urn_map: dict[str, str] = {}  # mock URN -> engine URN
    qualified: dict[str, str] = {}  # engine URN -> qualified type
    resources: list[EngineResource] = []
    default_providers: dict[tuple[str, str], EngineResource] = {}

    def remap(urn: str) -> str:
        return urn_map.get(urn, urn)

    def remap_values(value: Any) -> Any:
        if isinstance(value, str):
            return urn_map.get(value, value)
        if isinstance(value, list):
            return [remap_values(v) for v in value]
        if isinstance(value, dict):
            if value.get(SIG_KEY) == RESOURCE_REF_SIG and "urn" in value:
                return {**value, "urn": remap(value["urn"])}
            return {k: remap_values(v) for k, v in value.items()}
        return value

    stack_first = sorted(raw["resources"], key=lambda r: r["type"] != STACK_TYPE)  # stable: order kept otherwise
    for reg in stack_first:
        parent = remap(reg["parent"]) if reg["parent"] else None
        parent_type = qualified.get(parent, "") if parent else ""
        qtype = reg["type"] if not parent_type or parent_type == STACK_TYPE else f"{parent_type}${reg['type']}"
        urn = make_urn(stack.stack, stack.project, qtype, reg["name"])
        urn_map[reg["mock_urn"]] = urn
        qualified[urn] = qtype
        is_provider = reg["type"].startswith("pulumi:providers:")

        provider_urn = None
        if reg["provider"]:
            provider_urn = remap(parse_provider_reference(reg["provider"])[0])
        elif reg["custom"] and not is_provider and reg["type"] != STACK_TYPE:
            package = reg["type"].split(":", 1)[0]
            key = (package, reg.get("version") or "")
            provider = default_providers.get(key)
            if provider is None:
                provider = _default_provider(stack, package, key[1], wire_config, secret_keys, dry_run)
                default_providers[key] = provider
                resources.append(provider)  # registered just before the first resource that needs it
            provider_urn = provider.urn

        inputs = decode_wire(remap_values(reg["inputs"]))
        outputs = dict(inputs)
        if reg["type"] == STACK_TYPE:
            outputs = decode_wire(remap_values(raw.get("stack_outputs") or {}))
        elif reg["custom"] or reg.get("remote"):
            if not dry_run:
                outputs = {**decode_wire(remap_values(reg.get("outputs") or {})), **inputs}
                if reg["custom"]:
                    outputs["id"] = reg["id"]
            for key in reg["additionalSecretOutputs"]:
                if key in outputs and not isinstance(outputs[key], Secret):
                    outputs[key] = Secret(outputs[key])
        resources.append(EngineResource(
            urn=urn, type=reg["type"], inputs=inputs, outputs=outputs, custom=bool(reg["custom"]),
            id=reg["id"] if reg["custom"] else "", parent=parent, provider=provider_urn,
            dependencies=[remap(d) for d in reg["dependencies"]],
            property_dependencies={k: [remap(d) for d in v] for k, v in reg["propertyDependencies"].items() if v},
            protect=bool(reg["protect"]), ignore_changes=list(reg["ignoreChanges"]),
            delete_before_replace=reg["deleteBeforeReplace"],
            additional_secret_outputs=list(reg["additionalSecretOutputs"]),
            aliases=[remap(a) for a in reg["aliasURNs"]],
            custom_timeouts=CustomTimeouts(*(_go_duration_seconds(reg["customTimeouts"][k])
                                             for k in ("create", "update", "delete")))))
    return CapturedProgram(program_dir, stack, dry_run, resources,
                           decode_wire(remap_values(raw.get("stack_outputs") or {})))


def _default_provider(stack: StackRef, package: str, version: str, wire_config: dict[str, str],
                      secret_keys: set[str], dry_run: bool) -> EngineResource:
    inputs: dict[str, Any] = {}
    for full, value in sorted(wire_config.items()):
        namespace, _, key = full.partition(":")
        if namespace == package and key:
            inputs[key] = Secret(value) if full in secret_keys else value
    if version:
        inputs["version"] = version
    name = _default_provider_name(version)
    return EngineResource(urn=make_urn(stack.stack, stack.project, f"pulumi:providers:{package}", name),
                          type=f"pulumi:providers:{package}", inputs=inputs, outputs=dict(inputs), custom=True,
                          id="" if dry_run else f"{package}-{name}-id")  # preview: a new provider's id is unknown


__all__ = ["CapturedProgram", "capture_program", "unknown"]
