"""The pulumi-policy adapter: the engine's Analyzer calls in, ps019 controls over plain data out.

pulumi_policy's own servicer answers GetPluginInfo, GetAnalyzerInfo, Configure and ConfigureStack, so the engine sees
one policy per control (ID, description, level, severity, config schema) and applies ``--policy-pack-config`` as
usual. Analyze, AnalyzeStack and Remediate are ours: the properties are converted once per resource and every
applicable control runs over the same ``ResourceView``; levels, exceptions and break-glass waivers are applied in one
place; the run's results are kept for the evidence record.

Nothing here may raise into gRPC: an internal failure becomes a mandatory ``PS019-PACK-000`` violation naming the
problem, so the engine fails closed with a readable message instead of a stack trace.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Iterable, Mapping, Sequence

from google.protobuf import empty_pb2
from pulumi.runtime import proto
from pulumi_policy import policy as pp

from ps019.controls.base import Control
from ps019.logging import configure_pack_logging, get_logger
from ps019.model import Diagnostic, Level, ResourceView, Severity, Violation
from ps019.pack import convert
from ps019.pack.run import Run
from ps019.pack.settings import SETTINGS_POLICY, Settings

log = get_logger("ps019.pack")

INTERNAL_ERROR_ID = "PS019-PACK-000"

_LEVEL_TO_PROTO = {
    Level.ADVISORY: proto.ADVISORY,
    Level.MANDATORY: proto.MANDATORY,
    Level.REMEDIATE: proto.MANDATORY,  # ps019 never remediates; the engine treats remediate as mandatory anyway
    Level.DISABLED: proto.DISABLED,
}
_SEVERITY_TO_PROTO = {
    Severity.LOW: proto.POLICY_SEVERITY_LOW,
    Severity.MEDIUM: proto.POLICY_SEVERITY_MEDIUM,
    Severity.HIGH: proto.POLICY_SEVERITY_HIGH,
    Severity.CRITICAL: proto.POLICY_SEVERITY_CRITICAL,
}
_PP_LEVEL = {
    pp.EnforcementLevel.ADVISORY: Level.ADVISORY,
    pp.EnforcementLevel.MANDATORY: Level.MANDATORY,
    pp.EnforcementLevel.DISABLED: Level.DISABLED,
    pp.EnforcementLevel.REMEDIATE: Level.MANDATORY,
}


class Ps019Servicer(pp._PolicyAnalyzerServicer):  # noqa: SLF001 - see module docstring and pyproject pin
    def __init__(self, pack_name: str, pack_version: str, controls: tuple[Control, ...],
                 policies: list[pp.Policy], **kwargs: Any) -> None:
        super().__init__(pack_name, pack_version, policies, pp.EnforcementLevel.ADVISORY, **kwargs)
        self.pack_name = pack_name
        self.pack_version = pack_version
        self.controls = controls
        self._policy_by_name = {p.name: p for p in policies}
        self._lock = threading.RLock()
        self._stack_tags: dict[str, str] = {}
        self._configured = False
        self._run: Run | None = None
        self._apply_config()

    # --- configuration -------------------------------------------------------------------------------------------

    def Configure(self, request, context):  # noqa: N802 - gRPC method name
        response = super().Configure(request, context)
        with self._lock:
            self._apply_config()
            configure_pack_logging(self.settings)  # the log's destination is part of the pack config
            self._run = None  # a new Configure starts a new run (the stand-in reuses processes across runs)
        return response

    def ConfigureStack(self, request, context):  # noqa: N802
        response = super().ConfigureStack(request, context)
        with self._lock:
            self._stack_tags = dict(request.tags)
            self._run = None
        return response

    def _apply_config(self) -> None:
        """Resolve each control's level and params once per Configure, not once per resource."""
        resource: dict[str | None, list[tuple[Control, Level, dict]]] = {}
        stack: list[tuple[Control, Level, dict]] = []
        findings: list[tuple[Control, Level, dict]] = []
        levels: dict[str, Level] = {}
        for control in self.controls:
            level = _PP_LEVEL[self._get_enforcement_level(self._policy_by_name[control.id])]
            levels[control.id] = level
            if level is Level.DISABLED:
                continue
            entry = (control, level, control.params(self._get_policy_config(control.id)))
            if control.scope == "stack":
                stack.append(entry)
            elif control.scope == "findings":
                findings.append(entry)
            else:
                for t in control.resource_types or (None,):
                    resource.setdefault(t, []).append(entry)
        self._resource_controls = resource
        self._stack_controls = stack
        self._findings_controls = findings
        self.levels = levels
        self.settings = Settings(raw=self._get_policy_config(SETTINGS_POLICY) or {})

    def _current_run(self) -> Run:
        with self._lock:
            if self._run is None:
                self._run = Run(self.pack_name, self.pack_version, self.settings, dict(self._stack_tags), self.levels)
            return self._run

    # --- analysis ------------------------------------------------------------------------------------------------

    def Remediate(self, request, context):  # noqa: N802
        return proto.RemediateResponse()  # ps019 controls never rewrite resources

    def Analyze(self, request, context):  # noqa: N802
        response = proto.AnalyzeResponse()
        run = view = None
        try:
            run = self._current_run()
            view = convert.request_view(request)
            ctx = run.context()
            if run.cancelled:  # cancelled while this call waited for the run's facts: stop here
                diagnostics = [_cancelled(view.urn, view.type, run.cancelled)]
            else:
                # Controls for every type first: the gate's decision (reported on the run's first resource) is
                # then the first finding, and so the blocked record's reason.
                controls = self._resource_controls.get(None, []) + self._resource_controls.get(view.type, [])
                diagnostics = [d for c, level, params in controls
                               for d in self._run_control(c, level, params, view, ctx)]
                # Waivers first, so findings controls (escalation) see which risks were accepted under an exception
                # or overridden under a grant.
                diagnostics = run.waive(diagnostics)
                diagnostics += self._run_findings_controls(diagnostics, ctx, view.urn, view.type)
                diagnostics = run.finish_resource(view, diagnostics)
        except Exception as exc:  # never a traceback into the engine; the attempt is still recorded
            diagnostic = _internal_error(getattr(request, "urn", ""), getattr(request, "type", ""), exc)
            log.error("analyze_failed", urn=request.urn, error=_describe(exc))
            diagnostics = run.internal_error(diagnostic, view) if run is not None else [diagnostic]
        _add(response, diagnostics, self.pack_name, self.pack_version, self._policy_by_name, resource_scope=True)
        return response

    def AnalyzeStack(self, request, context):  # noqa: N802
        response = proto.AnalyzeResponse()
        run = None
        try:
            run = self._current_run()
            views = LazyViews(request.resources)
            ctx = run.context()
            root = next((r.urn for r in request.resources if r.type == "pulumi:pulumi:Stack"), None) or run.root_urn()
            diagnostics = []
            for control, level, params in self._stack_controls:
                diagnostics.extend(self._run_control(control, level, params, views, ctx, default_urn=root))
            diagnostics = run.waive(diagnostics)
            diagnostics += self._run_findings_controls(diagnostics, ctx, root, "pulumi:pulumi:Stack")
            diagnostics = run.finish_stack(diagnostics)
        except Exception as exc:
            diagnostic = _internal_error("", "pulumi:pulumi:Stack", exc)
            log.error("analyze_stack_failed", error=_describe(exc))
            diagnostics = run.internal_error(diagnostic, stack=True) if run is not None else [diagnostic]
        _add(response, diagnostics, self.pack_name, self.pack_version, self._policy_by_name, resource_scope=False)
        return response

    def Cancel(self, request, context):  # noqa: N802
        """The engine calls Cancel at shutdown (after a completed pass: the record is written, nothing to do) and
        when the operation is cancelled or abandoned mid-way (Ctrl-C, a failed step): stop, and record the run as
        interrupted (pulumi ``defaultHost.SignalCancellation`` / plugin release)."""
        self.interrupt("engine Cancel")
        return empty_pb2.Empty()

    def interrupt(self, reason: str) -> None:
        """Cancel the current run (engine Cancel, SIGINT, SIGTERM); its record says it was interrupted."""
        with self._lock:
            run = self._run
        if run is not None:
            try:
                run.cancel(reason)
            except Exception as exc:  # noqa: BLE001 - a shutdown path; the log says what was lost
                log.error("cancel_failed", reason=reason, error=_describe(exc))

    def _run_findings_controls(self, diagnostics: list[Diagnostic], ctx: Any, urn: str,
                               rtype: str) -> list[Diagnostic]:
        if not diagnostics or not self._findings_controls:
            return []
        out: list[Diagnostic] = []
        for control, level, params in self._findings_controls:
            for d in self._run_control(control, level, params, tuple(diagnostics), ctx, default_urn=urn):
                out.append(Diagnostic(control_id=d.control_id, level=d.level, severity=d.severity, urn=d.urn,
                                      message=d.message, resource_type=rtype))
        return out

    def _run_control(self, control: Control, level: Level, params: Mapping[str, Any], subject: Any, ctx: Any,
                     default_urn: str | None = None) -> Iterable[Diagnostic]:
        urn = default_urn if default_urn is not None else subject.urn
        rtype = "pulumi:pulumi:Stack" if default_urn is not None else subject.type
        try:
            violations = list(control.check(subject, ctx, params) or ())
        except Exception as exc:
            # A control that cannot decide fails closed at its own level, and says why.
            log.error("control_failed", control=control.id, urn=urn, error=_describe(exc))
            violations = [Violation(f"{control.id} could not evaluate this resource ({_describe(exc)}); "
                                    "treating it as a violation. Please report this as a ps019 bug.")]
        for v in violations:
            v_level = Level.ADVISORY if v.details.get("unverifiable") or v.details.get("advisory") else level
            yield Diagnostic(control_id=control.id, level=v_level, severity=control.severity, urn=v.urn or urn,
                             message=v.message, resource_type=rtype)


class LazyViews(Sequence):
    """The stack's resources (outputs) as ResourceViews, converted only if a stack control actually reads them: at
    10,000 resources converting every output costs seconds, and most stack controls only read the run's facts."""

    def __init__(self, resources: Any) -> None:
        self._resources = resources
        self._views: tuple[ResourceView, ...] | None = None

    def _all(self) -> tuple[ResourceView, ...]:
        if self._views is None:
            self._views = tuple(convert.request_view(r) for r in self._resources)
        return self._views

    def __getitem__(self, index):  # type: ignore[override]
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._resources)

    def __iter__(self):
        return iter(self._all())


def _internal_error(urn: str, rtype: str, exc: BaseException) -> Diagnostic:
    return Diagnostic(control_id=INTERNAL_ERROR_ID, level=Level.MANDATORY, severity=Severity.CRITICAL, urn=urn,
                      message=f"ps019 internal error, failing closed: {_describe(exc)}", resource_type=rtype)


def _cancelled(urn: str, rtype: str, reason: str) -> Diagnostic:
    return Diagnostic(control_id=INTERNAL_ERROR_ID, level=Level.MANDATORY, severity=Severity.CRITICAL, urn=urn,
                      message=f"ps019 run was cancelled ({reason}); nothing is analysed after a cancel, failing closed",
                      resource_type=rtype)


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _add(response: Any, diagnostics: Iterable[Diagnostic], pack: str, version: str,
         policies: Mapping[str, pp.Policy], resource_scope: bool) -> None:
    for d in diagnostics:
        policy = policies.get(d.control_id)
        description = policy.description if policy is not None else d.control_id
        response.diagnostics.append(proto.AnalyzeDiagnostic(
            policyName=d.control_id,
            policyPackName=pack,
            policyPackVersion=version,
            description=description,
            message=f"{description}\n{d.message}",
            # The engine attributes Analyze diagnostics to the analyzed resource; keep the urn for stack results.
            urn="" if resource_scope else d.urn,
            enforcementLevel=_LEVEL_TO_PROTO[d.level],
            severity=_SEVERITY_TO_PROTO.get(d.severity, proto.POLICY_SEVERITY_UNSPECIFIED),
        ))
