"""Engine passes over policy packs: the call order, update/preview semantics and results of the Pulumi engine.

Call order (pulumi ``pkg/resource/plugin/analyzer_plugin.go``, ``pkg/resource/deploy/step_generator.go``):
ConfigureStack, GetPluginInfo, GetAnalyzerInfo, Configure, then per resource in registration order Remediate (each
pack in turn; a remediation feeds the next pack) and Analyze (every pack), then AnalyzeStack over every resource's
outputs, then Cancel. In an update (``dry_run=False``) a mandatory Analyze violation from any pack makes the resource
invalid and the deployment bails there: later resources are not analyzed and AnalyzeStack does not run. In a preview
everything runs and the pass fails at the end.

``pulumi policy analyze`` (``pkg/cmd/pulumi/policy/policy_analyze.go``, ``AnalyzeSnapshot``) loads packs with no stack
options: no ConfigureStack and no stack variables; Remediate and Analyze run over each resource's inputs with
preview semantics (nothing is blocked), then AnalyzeStack over the outputs. ``run_policy_analyze`` does that.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import structlog
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, plugin_pb2

from ps019.engine.pack_process import SHUTDOWN_GRACE, PackProcess, PackProject, choose_interpreter, read_pack_project
from ps019.engine.policy_config import WIRE_TO_LEVEL, load_policy_pack_config, reconcile, to_configure_request
from ps019.engine.resources import EngineResource, StackRef, urn_name
from ps019.engine.results import (EngineDiagnostic, PassResult, PolicyInfo, PolicySummary, Remediation,
                                  UpResult)
from ps019.engine.values import Scrubber, Secret, iter_secret_texts, marshal_properties, struct_to_values
from ps019.errors import InputError, PackError
from ps019.model import Level, Severity

log = structlog.get_logger(__name__)

__all__ = ["EngineDiagnostic", "PackPool", "PassResult", "PolicyInfo", "PolicySummary", "Remediation", "UpResult",
           "normalise_config", "pack_environment", "run_pass", "run_passes", "run_policy_analyze", "run_up"]

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

# How long the engine waits for Cancel: SignalCancellation (an interrupt) allows 30 s, shutdown 5 s (pkg/host/host.go).
CANCEL_TIMEOUT_INTERRUPT = 30.0
CANCEL_TIMEOUT_SHUTDOWN = 5.0


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
                     base: Mapping[str, str] | None = None, *, runtime: str = "python",
                     configure_stack: bool = True) -> dict[str, str]:
    """The pack's environment as the language host's PolicyProxy builds it from ConfigureStack (none without it).

    Python (``pulumi-language-python`` RunPlugin): the proxy's PULUMI_ORGANIZATION/PROJECT/STACK/DRY_RUN/CONFIG come
    first and the CLI's environment (``base``) is appended after them, so a variable the CLI already has wins. Node.js:
    PULUMI_NODEJS_ORGANIZATION/PROJECT/STACK/DRY_RUN and PULUMI_CONFIG are appended after the CLI's environment, so
    the proxy's win. PULUMI_CONFIG_SECRET_KEYS is never set for packs."""
    base = dict(os.environ if base is None else base)
    proxy: dict[str, str] = {}
    if configure_stack:
        prefix = "PULUMI_NODEJS_" if runtime == "nodejs" else "PULUMI_"
        if stack.organization:
            proxy[prefix + "ORGANIZATION"] = stack.organization
        proxy[prefix + "PROJECT"] = stack.project
        proxy[prefix + "STACK"] = stack.stack
        proxy[prefix + "DRY_RUN"] = "true" if dry_run else "false"
        if config:
            proxy["PULUMI_CONFIG"] = json.dumps(dict(config), separators=(",", ":"))
    return {**base, **proxy} if runtime == "nodejs" else {**proxy, **base}


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
            _cancel(process, CANCEL_TIMEOUT_SHUTDOWN)
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


def _cancel(process: PackProcess, timeout: float) -> bool:
    """The engine's Cancel (UNIMPLEMENTED tolerated). True when the pack acknowledged it."""
    try:
        return process.call("Cancel", empty_pb2.Empty(), timeout=timeout, tolerate_unimplemented=True) is not None
    except PackError:
        return False  # shutting down anyway


def run_pass(pack_dir: str | Path, resources: Iterable[EngineResource], *, stack: StackRef | str, dry_run: bool,
             policy_pack_config: str | Path | Mapping | None = None, **kwargs: Any) -> PassResult:
    """Run one engine pass (a preview when ``dry_run``, else an update) of the pack at ``pack_dir``.

    ``timeout`` bounds the pack's start-up and each single call. Raises :class:`InputError` for unusable
    resources/config and :class:`PackError` when the pack cannot be started, crashes or does not answer."""
    return run_passes([pack_dir], resources, stack=stack, dry_run=dry_run, policy_pack_configs=[policy_pack_config],
                      **kwargs)[0]


def run_policy_analyze(pack_dirs: Sequence[str | Path], resources: Iterable[EngineResource], *,
                       stack: StackRef | str, policy_pack_configs: Sequence[Any] | None = None,
                       **kwargs: Any) -> list[PassResult]:
    """``pulumi policy analyze``: no ConfigureStack and no stack variables reach the packs; every resource is
    analyzed with preview semantics (nothing blocks); AnalyzeStack runs over the outputs. ``stack`` only names the
    export's root stack resource (the packs are never told it)."""
    return run_passes(pack_dirs, resources, stack=stack, dry_run=True, policy_pack_configs=policy_pack_configs,
                      analyze_only=True, **kwargs)


def run_passes(pack_dirs: Sequence[str | Path], resources: Iterable[EngineResource], *, stack: StackRef | str,
               dry_run: bool, config: Mapping[str, Any] | None = None, secret_config_keys: Iterable[str] = (),
               tags: Mapping[str, str] | None = None, policy_pack_configs: Sequence[Any] | None = None,
               pool: PackPool | None = None, timeout: float = 60.0, environ: Mapping[str, str] | None = None,
               cancel: threading.Event | None = None, analyze_only: bool = False,
               send_configure_stack: bool = True,
               fallback_interpreter: str | None = sys.executable, warn_fallback: bool = True) -> list[PassResult]:
    """One engine pass with several packs (``--policy-pack A --policy-pack B``), one result per pack in order.

    ``environ`` is the CLI's environment (default ours); ``cancel``, when set during the pass, makes the engine send
    Cancel to every pack and stop, as an interrupted ``pulumi up`` does; ``analyze_only`` is ``pulumi policy analyze``;
    ``send_configure_stack=False`` is an engine older than v3.170 (no ConfigureStack; the legacy shim sets the
    PULUMI_* variables); ``fallback_interpreter`` (default: ours) runs a Python pack whose declared virtualenv was never
    created, with a warning in the result -- the CLI refuses such a pack; pass ``None`` to refuse too."""
    t0 = time.monotonic()
    stack = StackRef.parse(stack) if isinstance(stack, str) else stack
    pack_dirs = list(pack_dirs)
    if not pack_dirs:
        raise InputError("no policy pack given")
    configs = list(policy_pack_configs) if policy_pack_configs is not None else [None] * len(pack_dirs)
    if len(configs) > len(pack_dirs):
        raise InputError(f"{len(configs)} policy pack configs for {len(pack_dirs)} policy packs")
    configs += [None] * (len(pack_dirs) - len(configs))
    resources = list(resources)
    config = dict(config or {})
    if analyze_only:
        dry_run, config, secret_config_keys, tags = True, {}, (), {}
    secret_keys = {k if ":" in k else f"{stack.project}:{k}" for k in secret_config_keys}
    secret_keys |= {k if ":" in k else f"{stack.project}:{k}" for k, v in config.items() if isinstance(v, Secret)}
    wire_config = normalise_config(stack.project, config)
    scrub = Scrubber([wire_config[k] for k in secret_keys if k in wire_config])
    for resource in resources:
        scrub.add(iter_secret_texts(resource.inputs))
        scrub.add(iter_secret_texts(resource.outputs))
    user_configs = [load_policy_pack_config(c) for c in configs]

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

    sessions: list[_Session] = []
    try:
        for pack_dir, user_config in zip(pack_dirs, user_configs):
            project = read_pack_project(pack_dir)
            env = pack_environment(stack, dry_run, wire_config, environ, runtime=project.runtime,
                                   configure_stack=not analyze_only)
            interpreter = choose_interpreter(project, env, fallback=fallback_interpreter)
            session = _Session(project, interpreter, env, pool, timeout, scrub, user_config)
            sessions.append(session)
            if (warn_fallback and project.runtime == "python" and project.virtualenv
                    and interpreter == fallback_interpreter):
                session.warnings.append(f"{project.directory}: the virtualenv {project.virtualenv!r} of "
                                        "PulumiPolicy.yaml does not exist (run `pulumi install` there); ran the pack "
                                        f"with {interpreter}")
        for session in sessions:
            session.boot(stack, dry_run, wire_config, secret_keys, dict(tags or {}),
                         configure_stack=send_configure_stack and not analyze_only, analyze_only=analyze_only)
        _drive(sessions, resources, providers, provider_wire, remediate_props, stack_props, stack, dry_run, cancel)
    except KeyboardInterrupt:
        # An interrupted CLI: SignalCancellation sends Cancel to every analyzer, then the plugins are closed.
        for session in sessions:
            session.cancel(CANCEL_TIMEOUT_INTERRUPT)
        for session in sessions:
            session.close(failed=True)
        raise
    except InputError:
        for session in sessions:
            session.close(failed=False)  # the packs are healthy (e.g. an invalid policy config): keep pooled ones
        raise
    except BaseException:
        for session in sessions:
            session.close(failed=True)
        raise
    results = []
    for session in sessions:
        session.finish(t0, analyze_only)
        results.append(session.result)
    return results


def run_up(pack_dir: str | Path | Sequence[str | Path], resources: Iterable[EngineResource],
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


class _Session:
    """One pack process through one pass: the engine's calls to it, and what they returned."""

    def __init__(self, project: PackProject, interpreter: str, env: dict[str, str], pool: PackPool | None,
                 timeout: float, scrub: Scrubber, user_config: dict) -> None:
        self.project = project
        self.pool = pool
        self.timeout = timeout
        self.scrub = scrub
        self.user_config = user_config
        self.warnings: list[str] = []
        self.busy = 0.0  # seconds spent in this pack's Remediate/Analyze calls

        def start() -> PackProcess:
            return PackProcess(project, interpreter, env, timeout, scrub)

        if pool is not None:
            key_env = tuple(sorted((k, v) for k, v in env.items() if k not in _VOLATILE_VARS))
            self.process, self.started = pool.acquire((str(project.directory), interpreter, key_env), start)
        else:
            self.process, self.started = start(), True

    def call(self, method: str, request: Any, what: str = "", **kw: Any) -> Any:
        return self.process.call(method, request, timeout=self.timeout, what=what, scrub=self.scrub, **kw)

    def boot(self, stack: StackRef, dry_run: bool, wire_config: dict, secret_keys: set, tags: dict,
             configure_stack: bool, analyze_only: bool) -> None:
        t = time.monotonic()
        if configure_stack:
            self.call("ConfigureStack", analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=stack.stack, project=stack.project, organization=stack.organization, dry_run=dry_run,
                config=wire_config, config_secret_keys=sorted(secret_keys), tags=tags), tolerate_unimplemented=True)
        process = self.process
        if process.analyzer_info is None:  # the engine caches these per plugin
            process.plugin_info = self.call("GetPluginInfo", empty_pb2.Empty(), tolerate_unimplemented=True) \
                or plugin_pb2.PluginInfo()
            process.analyzer_info = self.call("GetAnalyzerInfo", empty_pb2.Empty())
        info = self.info = process.analyzer_info
        self.pack_name = info.name
        self.pack_version = self.project.version or info.version  # PulumiPolicy.yaml's version wins, as the engine
        policy_config = reconcile(info, self.user_config)
        if info.supportsConfig and policy_config:
            self.call("Configure", to_configure_request(policy_config))
        self.severities = {p.name: _SEVERITY.get(p.severity) for p in info.policies}
        policies = _policy_infos(info)
        # Summaries count the policies as configured: a policy the config disables is not "passed".
        levels = {name: cfg.level for name, cfg in policy_config.items()}
        self.enabled = {kind: [p.name for p in policies if p.kind in (kind, "unknown")
                               and (levels.get(p.name) or p.level) is not Level.DISABLED]
                        for kind in ("resource", "stack")}
        self.result = PassResult(self.pack_name, self.pack_version, stack, dry_run, policies,
                                 mode="analyze" if analyze_only else "deployment", runtime=self.project.runtime,
                                 warnings=list(self.warnings))
        self.result.timings["configure"] = time.monotonic() - t

    def diagnostic(self, d: Any, urn: str, rtype: str, phase: str) -> EngineDiagnostic:
        level = WIRE_TO_LEVEL.get(d.enforcementLevel, Level.ADVISORY)
        if level == Level.REMEDIATE:
            level = Level.MANDATORY  # the engine downgrades a violation that survived remediation
        return EngineDiagnostic(urn=urn, resource_type=rtype, policy_name=d.policyName,
                                pack=d.policyPackName or self.pack_name, pack_version=self.pack_version, level=level,
                                severity=_SEVERITY.get(d.severity) or self.severities.get(d.policyName),
                                message=self.scrub(d.message), phase=phase)

    def summarise(self, kind: str, urn: str, response: Any) -> None:
        failed = {d.policyName for d in response.diagnostics}
        enabled = self.enabled[kind]
        not_applicable = {n.policy_name: n.reason for n in response.not_applicable
                          if n.policy_name in enabled and n.policy_name not in failed}
        passed = tuple(p for p in enabled if p not in failed and p not in not_applicable)
        self.result.summaries.append(PolicySummary(urn, kind, passed, tuple(sorted(failed)), not_applicable))

    def remediate(self, r: EngineResource, request: Any, dry_run: bool) -> None:
        t = time.monotonic()
        remediated = self.call("Remediate", request, f"{r.type} {r.urn}", tolerate_unimplemented=True)
        self.busy += time.monotonic() - t
        for remediation in (remediated.remediations if remediated is not None else ()):
            if remediation.diagnostic:
                self.result.diagnostics.append(EngineDiagnostic(
                    urn=r.urn, resource_type=r.type, policy_name=remediation.policyName,
                    pack=remediation.policyPackName or self.pack_name, pack_version=self.pack_version,
                    level=Level.ADVISORY, severity=self.severities.get(remediation.policyName),
                    message=self.scrub(remediation.diagnostic), phase="remediate"))
            elif remediation.HasField("properties"):
                # The remediated properties replace the inputs for Analyze (and for the resource itself).
                inputs = struct_to_values(remediation.properties)
                request.properties.CopyFrom(marshal_properties(inputs, dry_run=dry_run, skip_internal_keys=False))
                self.result.remediations.append(Remediation(r.urn, remediation.policyName,
                                                            remediation.policyPackName or self.pack_name))

    def analyze(self, r: EngineResource, request: Any) -> list[EngineDiagnostic]:
        t = time.monotonic()
        response = self.call("Analyze", request, f"{r.type} {r.urn}")
        self.busy += time.monotonic() - t
        self.result.analyzed_urns.append(r.urn)
        found = [self.diagnostic(d, r.urn, r.type, "analyze") for d in response.diagnostics]
        self.result.diagnostics.extend(found)
        self.summarise("resource", r.urn, response)
        return found

    def analyze_stack(self, request: Any, types: Mapping[str, str], root: str) -> None:
        t = time.monotonic()
        response = self.call("AnalyzeStack", request, "the stack")
        for d in response.diagnostics:
            urn = d.urn if d.urn in types else root  # resolveStackPolicyViolationURN
            self.result.diagnostics.append(self.diagnostic(d, urn, types.get(urn, "pulumi:pulumi:Stack"),
                                                           "analyze_stack"))
        self.summarise("stack", "", response)
        self.result.stack_analyzed = True
        self.result.timings["analyze_stack"] = time.monotonic() - t

    def cancel(self, timeout: float) -> None:
        if self.process.alive:
            _cancel(self.process, timeout)
        if hasattr(self, "result"):
            self.result.cancelled = True

    def close(self, failed: bool) -> None:
        if self.pool is None:
            self.process.close(grace=0.5)
        elif failed:
            self.pool.discard(self.process)

    def finish(self, t0: float, analyze_only: bool) -> None:
        result = self.result
        if self.pool is None:
            if not result.cancelled:
                _cancel(self.process, CANCEL_TIMEOUT_SHUTDOWN)  # shutdown: Cancel, then SIGINT
            self.process.close()
        elif result.cancelled:
            self.pool.discard(self.process)  # a cancelled pack is not reused
        result.timings["start"] = self.process.start_seconds if self.started else 0.0
        result.timings["total"] = time.monotonic() - t0
        result.timings["analyze"] = self.busy
        analyzed = len(result.analyzed_urns)
        if analyzed:
            result.timings["per_resource"] = self.busy / analyzed
        result.pack_output = [self.scrub(line) for line in self.process.stdout_lines]
        self.process.stdout_lines.clear()
        log.info("policy pass done", pack=result.pack_name, stack_ref=str(result.stack), dry_run=result.dry_run,
                 mode=result.mode, analyzed=analyzed, diagnostics=len(result.diagnostics), failed=result.failed,
                 blocked_at=result.blocked_at, cancelled=result.cancelled)


def _drive(sessions: list[_Session], resources: list[EngineResource], providers: dict, provider_wire: dict,
           remediate_props: dict, stack_props: dict, stack: StackRef, dry_run: bool,
           cancel: threading.Event | None) -> None:
    blocked_at = None
    for r in resources:
        if cancel is not None and cancel.is_set():
            for session in sessions:  # SignalCancellation: every analyzer gets Cancel, and the run stops here
                session.cancel(CANCEL_TIMEOUT_INTERRUPT)
            return
        provider = provider_wire.get(providers[r.urn].urn) if r.urn in providers else None
        request = analyzer_pb2.AnalyzeRequest(type=r.type, properties=remediate_props[r.urn], urn=r.urn,
                                              name=urn_name(r.urn), options=_options(r), provider=provider)
        for session in sessions:  # sequentially: each pack sees the previous packs' remediations
            session.remediate(r, request, dry_run)
        request.properties.CopyFrom(_strip_internal(request.properties))
        mandatory = False
        for session in sessions:  # the engine runs packs in parallel here; the results are the same
            mandatory |= any(d.mandatory for d in session.analyze(r, request))
        if not dry_run and mandatory:
            blocked_at = r.urn  # BAIL: resource <urn> is invalid
            break
    if blocked_at is not None:
        for session in sessions:
            session.result.blocked_at = blocked_at
        return
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
    types = {r.urn: r.type for r in resources}
    for session in sessions:
        session.analyze_stack(request, types, root)


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
                       _SEVERITY.get(p.severity), _POLICY_TYPE.get(p.policy_type, "unknown"),
                       json_format.MessageToDict(p.configSchema)) for p in info.policies]
