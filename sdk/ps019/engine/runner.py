"""One engine pass over a policy pack: the call order, update/preview semantics and results of the Pulumi engine.

Call order (pulumi ``pkg/resource/plugin/analyzer_plugin.go``, ``pkg/resource/deploy/step_generator.go``):
ConfigureStack, GetPluginInfo, GetAnalyzerInfo, Configure, then per resource in registration order Remediate and
Analyze, then AnalyzeStack over every resource's outputs, then Cancel. In an update (``dry_run=False``) a mandatory
Analyze violation makes the resource invalid and the deployment bails there: later resources are not analyzed and
AnalyzeStack does not run. In a preview everything runs and the pass fails at the end.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import structlog
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, plugin_pb2

from ps019.engine.pack_process import SHUTDOWN_GRACE, PackProcess, choose_interpreter, read_pack_project
from ps019.engine.policy_config import WIRE_TO_LEVEL, load_policy_pack_config, reconcile, to_configure_request
from ps019.engine.resources import EngineResource, StackRef, urn_name
from ps019.engine.values import Scrubber, Secret, iter_secret_texts, marshal_properties, struct_to_values
from ps019.errors import InputError, PackError
from ps019.model import Level, Severity

log = structlog.get_logger(__name__)

_SEVERITY = {
    analyzer_pb2.POLICY_SEVERITY_LOW: Severity.LOW,
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: Severity.MEDIUM,
    analyzer_pb2.POLICY_SEVERITY_HIGH: Severity.HIGH,
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: Severity.CRITICAL,
}
_POLICY_TYPE = {analyzer_pb2.POLICY_TYPE_RESOURCE: "resource", analyzer_pb2.POLICY_TYPE_STACK: "stack"}

# Variables that change under the caller without changing what a pack sees of its run (pytest sets one per test);
# they must not stop a pool from reusing a pack process.
_VOLATILE_VARS = frozenset({"PYTEST_CURRENT_TEST"})

# Variables the stand-in owns in the pack's environment (never inherited from the caller's shell).
_OWNED_VARS = ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_ORGANIZATION", "PULUMI_DRY_RUN", "PULUMI_CONFIG",
               "PULUMI_CONFIG_SECRET_KEYS")


@dataclass(frozen=True)
class EngineDiagnostic:
    """A policy violation as the engine records it (urn = the analyzed resource, or the stack root for stack
    policies that name no resource)."""

    urn: str
    resource_type: str
    policy_name: str
    pack: str
    pack_version: str
    level: Level
    severity: Severity | None
    message: str
    phase: str  # "analyze" | "analyze_stack" | "remediate"

    @property
    def mandatory(self) -> bool:
        return self.level in (Level.MANDATORY, Level.REMEDIATE)


@dataclass(frozen=True)
class Remediation:
    """A remediation that rewrote a resource's inputs before Analyze (reported, never a failure)."""

    urn: str
    policy_name: str
    pack: str


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    level: Level
    severity: Severity | None
    kind: str  # "resource" | "stack"
    config_schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PassResult:
    pack_name: str
    pack_version: str
    stack: StackRef
    dry_run: bool
    policies: list[PolicyInfo]
    diagnostics: list[EngineDiagnostic] = field(default_factory=list)
    remediations: list[Remediation] = field(default_factory=list)
    analyzed_urns: list[str] = field(default_factory=list)
    blocked_at: str | None = None
    stack_analyzed: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    pack_output: list[str] = field(default_factory=list)  # what the pack printed after its port (info lines)

    @property
    def failed(self) -> bool:
        return any(d.mandatory for d in self.diagnostics)

    @property
    def mandatory(self) -> list[EngineDiagnostic]:
        return [d for d in self.diagnostics if d.mandatory]

    def diagnostics_for(self, urn: str) -> list[EngineDiagnostic]:
        return [d for d in self.diagnostics if d.urn == urn]


@dataclass
class UpResult:
    """``pulumi up``: a preview pass, then (if the preview did not fail) an update pass."""

    preview: PassResult | None
    update: PassResult | None

    @property
    def failed(self) -> bool:
        return any(p is not None and p.failed for p in (self.preview, self.update)) or self.update is None


def normalise_config(project: str, config: Mapping[str, Any]) -> dict[str, str]:
    """``{"key"|"ns:key": value}`` -> the engine's ``ns:key`` -> string map (bare keys belong to the project;
    objects become compact JSON; secrets are plaintext, as the engine decrypts them for packs)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Secret):
            value = value.value
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, str):
            out[full] = value
        elif isinstance(value, bool):
            out[full] = "true" if value else "false"
        else:
            out[full] = json.dumps(value, separators=(",", ":"), sort_keys=False)
    return out


def pack_environment(stack: StackRef, dry_run: bool, config: Mapping[str, str],
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pack's environment, as the Python language host's PolicyProxy builds it: the caller's environment plus
    PULUMI_PROJECT/STACK/ORGANIZATION/DRY_RUN/CONFIG. PULUMI_CONFIG_SECRET_KEYS is never set for packs."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _OWNED_VARS}
    env["PULUMI_PROJECT"] = stack.project
    env["PULUMI_STACK"] = stack.stack
    if stack.organization:
        env["PULUMI_ORGANIZATION"] = stack.organization
    env["PULUMI_DRY_RUN"] = "true" if dry_run else "false"
    if config:
        env["PULUMI_CONFIG"] = json.dumps(dict(config), separators=(",", ":"))
    return env


class PackPool:
    """Reuses one pack process per (pack dir, interpreter, environment).

    pulumi_policy reads stack, dry-run and config from its environment, so they are fixed for the life of a
    process; each pass still re-sends ConfigureStack (tags) and Configure (levels, properties). Use as a context
    manager or call :meth:`close`.
    """

    def __init__(self) -> None:
        self._processes: dict[tuple, PackProcess] = {}
        self._lock = threading.Lock()
        self.starts = 0

    def acquire(self, key: tuple, start: Any) -> tuple[PackProcess, bool]:
        with self._lock:
            process = self._processes.get(key)
            if process is not None and process.alive:
                return process, False
            if process is not None:
                process.close(grace=0.5)
            process = start()
            self._processes[key] = process
            self.starts += 1
            return process, True

    def discard(self, process: PackProcess) -> None:
        with self._lock:
            for key, candidate in list(self._processes.items()):
                if candidate is process:
                    del self._processes[key]
        process.close(grace=0.5)

    def close(self) -> None:
        with self._lock:
            processes, self._processes = list(self._processes.values()), {}
        for process in processes:
            _cancel(process)
            process.interrupt()
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for process in processes:
            process.reap(deadline)

    def __len__(self) -> int:
        return len(self._processes)

    def __enter__(self) -> "PackPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _cancel(process: PackProcess) -> None:
    try:
        process.call("Cancel", empty_pb2.Empty(), timeout=2.0, tolerate_unimplemented=True)
    except PackError:
        pass  # shutting down anyway


def run_pass(pack_dir: str | Path, resources: Iterable[EngineResource], *, stack: StackRef | str, dry_run: bool,
             config: Mapping[str, Any] | None = None, secret_config_keys: Iterable[str] = (),
             tags: Mapping[str, str] | None = None, policy_pack_config: str | Path | Mapping | None = None,
             pool: PackPool | None = None, timeout: float = 60.0) -> PassResult:
    """Run one engine pass (a preview when ``dry_run``, else an update) of the pack at ``pack_dir``.

    ``timeout`` bounds the pack's start-up and each single call. Raises :class:`InputError` for unusable
    resources/config and :class:`PackError` when the pack cannot be started, crashes or does not answer."""
    t0 = time.monotonic()
    stack = StackRef.parse(stack) if isinstance(stack, str) else stack
    resources = list(resources)
    config = dict(config or {})
    secret_keys = {k if ":" in k else f"{stack.project}:{k}" for k in secret_config_keys}
    secret_keys |= {k if ":" in k else f"{stack.project}:{k}" for k, v in config.items() if isinstance(v, Secret)}
    wire_config = normalise_config(stack.project, config)
    scrub = Scrubber([wire_config[k] for k in secret_keys if k in wire_config])
    for resource in resources:
        scrub.add(iter_secret_texts(resource.inputs))
        scrub.add(iter_secret_texts(resource.outputs))
    user_policy_config = load_policy_pack_config(policy_pack_config)

    by_urn = {r.urn: r for r in resources}
    if len(by_urn) != len(resources):
        raise InputError("two resources share a URN")
    providers = {}
    for r in resources:
        if r.provider is not None:
            provider = by_urn.get(r.provider)
            if provider is None:
                raise InputError(f"{r.urn} uses provider {r.provider}, which is not among the resources")
            providers[r.urn] = provider
    # Marshal everything up front: an unknown in an update is an input error before any process starts.
    remediate_props = {r.urn: marshal_properties(r.inputs, dry_run=dry_run, skip_internal_keys=False)
                       for r in resources}
    stack_props = {r.urn: marshal_properties(r.outputs, dry_run=dry_run) for r in resources}
    provider_wire = {p.urn: _provider_message(p, dry_run) for p in {p.urn: p for p in providers.values()}.values()}

    project = read_pack_project(pack_dir)
    env = pack_environment(stack, dry_run, wire_config)
    interpreter = choose_interpreter(project, env)

    def start() -> PackProcess:
        return PackProcess(project, interpreter, env, timeout, scrub)

    if pool is not None:
        key_env = tuple(sorted((k, v) for k, v in env.items() if k not in _VOLATILE_VARS))
        process, started = pool.acquire((str(project.directory), interpreter, key_env), start)
    else:
        process, started = start(), True
    try:
        result = _drive(process, project, resources, providers, provider_wire, remediate_props, stack_props,
                        stack, dry_run,
                        wire_config, secret_keys, dict(tags or {}), user_policy_config, timeout, scrub)
    except InputError:
        if pool is None:  # the pack is healthy (e.g. an invalid policy config): keep a pooled one
            process.close(grace=0.5)
        raise
    except BaseException:
        if pool is not None:
            pool.discard(process)
        else:
            process.close(grace=0.5)
        raise
    if pool is None:
        _cancel(process)
        process.close()
    result.timings["start"] = process.start_seconds if started else 0.0
    result.timings["total"] = time.monotonic() - t0
    analyzed = len(result.analyzed_urns)
    if analyzed:
        result.timings["per_resource"] = result.timings["analyze"] / analyzed
    result.pack_output = [scrub(line) for line in process.stdout_lines]
    process.stdout_lines.clear()
    log.info("policy pass done", pack=result.pack_name, stack_ref=str(stack), dry_run=dry_run, analyzed=analyzed,
             diagnostics=len(result.diagnostics), failed=result.failed, blocked_at=result.blocked_at)
    return result


def run_up(pack_dir: str | Path, resources: Iterable[EngineResource],
           update_resources: Iterable[EngineResource] | None = None, *, skip_preview: bool = False,
           **kwargs: Any) -> UpResult:
    """``pulumi up``: a preview pass (``dry_run=True``), then, unless it failed, an update pass, each with a new
    pack process (the CLI's two plugin contexts). ``update_resources`` are what the update registers (a program's
    update capture); by default the same resources. ``skip_preview`` is ``--skip-preview`` (Automation API ``up``)."""
    if "pool" in kwargs or "dry_run" in kwargs:
        raise TypeError("run_up starts its own processes and chooses dry_run itself")
    resources = list(resources)
    preview = None
    if not skip_preview:
        preview = run_pass(pack_dir, resources, dry_run=True, **kwargs)
        if preview.failed:
            return UpResult(preview, None)
    update = run_pass(pack_dir, resources if update_resources is None else update_resources, dry_run=False, **kwargs)
    return UpResult(preview, update)


def _provider_message(provider: EngineResource, dry_run: bool) -> analyzer_pb2.AnalyzerProviderResource:
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type, name=provider.name, urn=provider.urn,
        properties=marshal_properties(provider.inputs, dry_run=dry_run))


def _options(r: EngineResource) -> analyzer_pb2.AnalyzerResourceOptions:
    options = analyzer_pb2.AnalyzerResourceOptions(
        protect=r.protect, ignoreChanges=list(r.ignore_changes),
        additionalSecretOutputs=list(r.additional_secret_outputs), aliases=list(r.aliases),
        parent=r.parent or "",
        customTimeouts=analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(
            create=r.custom_timeouts.create, update=r.custom_timeouts.update, delete=r.custom_timeouts.delete))
    if r.delete_before_replace is not None:
        options.deleteBeforeReplace = r.delete_before_replace
        options.deleteBeforeReplaceDefined = True
    return options


def _strip_internal(struct: Any) -> Any:
    out = type(struct)()
    out.CopyFrom(struct)
    for key in [k for k in out.keys() if k.startswith("__")]:
        del out[key]
    return out


def _policy_infos(info: analyzer_pb2.AnalyzerInfo) -> list[PolicyInfo]:
    from google.protobuf import json_format

    return [PolicyInfo(p.name, p.description, WIRE_TO_LEVEL.get(p.enforcementLevel, Level.ADVISORY),
                       _SEVERITY.get(p.severity), _POLICY_TYPE.get(p.policy_type, "resource"),
                       json_format.MessageToDict(p.configSchema)) for p in info.policies]


def _drive(process: PackProcess, project, resources: list[EngineResource], providers: dict,
           provider_wire: dict, remediate_props: dict, stack_props: dict, stack: StackRef, dry_run: bool, wire_config: dict,
           secret_keys: set, tags: dict, user_policy_config: dict, timeout: float, scrub: Scrubber) -> PassResult:
    call = lambda method, request, what="", **kw: process.call(  # noqa: E731
        method, request, timeout=timeout, what=what, scrub=scrub, **kw)
    t = time.monotonic()
    call("ConfigureStack", analyzer_pb2.AnalyzerStackConfigureRequest(
        stack=stack.stack, project=stack.project, organization=stack.organization, dry_run=dry_run,
        config=wire_config, config_secret_keys=sorted(secret_keys), tags=tags), tolerate_unimplemented=True)
    if process.analyzer_info is None:  # the engine caches these per plugin
        process.plugin_info = call("GetPluginInfo", empty_pb2.Empty(), tolerate_unimplemented=True) \
            or plugin_pb2.PluginInfo()
        process.analyzer_info = call("GetAnalyzerInfo", empty_pb2.Empty())
    info = process.analyzer_info
    pack_name = info.name
    pack_version = project.version or info.version  # PulumiPolicy.yaml's version wins, as in the engine
    policy_config = reconcile(info, user_policy_config)
    if info.supportsConfig and policy_config:
        call("Configure", to_configure_request(policy_config))
    severities = {p.name: _SEVERITY.get(p.severity) for p in info.policies}
    result = PassResult(pack_name, pack_version, stack, dry_run, _policy_infos(info))
    result.timings["configure"] = time.monotonic() - t

    def diagnostic(d: Any, urn: str, rtype: str, phase: str) -> EngineDiagnostic:
        level = WIRE_TO_LEVEL.get(d.enforcementLevel, Level.ADVISORY)
        if level == Level.REMEDIATE:
            level = Level.MANDATORY  # the engine downgrades a violation that survived remediation
        return EngineDiagnostic(urn=urn, resource_type=rtype, policy_name=d.policyName,
                                pack=d.policyPackName or pack_name, pack_version=pack_version, level=level,
                                severity=_SEVERITY.get(d.severity) or severities.get(d.policyName),
                                message=scrub(d.message), phase=phase)

    t = time.monotonic()
    for r in resources:
        what = f"{r.type} {r.urn}"
        options = _options(r)
        provider = provider_wire.get(providers[r.urn].urn) if r.urn in providers else None
        request = analyzer_pb2.AnalyzeRequest(type=r.type, properties=remediate_props[r.urn], urn=r.urn,
                                              name=urn_name(r.urn), options=options, provider=provider)
        remediated = call("Remediate", request, what, tolerate_unimplemented=True)
        for remediation in (remediated.remediations if remediated is not None else ()):
            if remediation.diagnostic:
                result.diagnostics.append(EngineDiagnostic(
                    urn=r.urn, resource_type=r.type, policy_name=remediation.policyName,
                    pack=remediation.policyPackName or pack_name, pack_version=pack_version,
                    level=Level.ADVISORY, severity=severities.get(remediation.policyName),
                    message=scrub(remediation.diagnostic), phase="remediate"))
            elif remediation.HasField("properties"):
                # The remediated properties replace the inputs for Analyze (and for the resource itself).
                inputs = struct_to_values(remediation.properties)
                request.properties.CopyFrom(marshal_properties(inputs, dry_run=dry_run, skip_internal_keys=False))
                result.remediations.append(Remediation(r.urn, remediation.policyName,
                                                       remediation.policyPackName or pack_name))
        request.properties.CopyFrom(_strip_internal(request.properties))
        response = call("Analyze", request, what)
        result.analyzed_urns.append(r.urn)
        found = [diagnostic(d, r.urn, r.type, "analyze") for d in response.diagnostics]
        result.diagnostics.extend(found)
        if not dry_run and any(d.mandatory for d in found):
            result.blocked_at = r.urn  # BAIL: resource <urn> is invalid
            break
    result.timings["analyze"] = time.monotonic() - t

    t = time.monotonic()
    if result.blocked_at is None:
        root = next((r.urn for r in resources if r.is_stack), stack.root_urn)
        request = analyzer_pb2.AnalyzeStackRequest()
        for r in resources:
            request.resources.append(analyzer_pb2.AnalyzerResource(
                type=r.type, properties=stack_props[r.urn], urn=r.urn,
                name=urn_name(r.urn), options=_options(r),
                provider=provider_wire.get(providers[r.urn].urn) if r.urn in providers else None,
                parent=r.parent or "", dependencies=list(r.dependencies),
                propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(v))
                                      for k, v in r.property_dependencies.items() if v}))
        response = call("AnalyzeStack", request, "the stack")
        types = {r.urn: r.type for r in resources}
        for d in response.diagnostics:
            urn = d.urn if d.urn in types else root  # resolveStackPolicyViolationURN
            result.diagnostics.append(diagnostic(d, urn, types.get(urn, "pulumi:pulumi:Stack"), "analyze_stack"))
        result.stack_analyzed = True
    result.timings["analyze_stack"] = time.monotonic() - t
    return result
