"""The pulumi-policy adapter: the engine's Analyzer calls in, ps019 controls over plain data out.

pulumi_policy's own servicer answers GetPluginInfo, GetAnalyzerInfo, Configure and ConfigureStack, so the engine sees
one policy per control (ID, description, level, severity, config schema) and applies ``--policy-pack-config`` as
usual. Analyze, AnalyzeStack and Remediate are ours: the properties are converted once per resource and every
applicable control runs over the same ``ResourceView``; levels, exceptions and break-glass waivers are applied in one
place; the run's results are kept for the evidence record.

Nothing here may raise into gRPC: an internal failure becomes a mandatory ``PS019-PACK-000`` violation naming the
problem, so the engine fails closed with a readable message instead of a stack trace.

Stack facts come from ConfigureStack (``ps019.pack.stack``); with none (``pulumi policy analyze``) the run is an analysis.
Every enabled policy that does not apply to a resource or to the stack is reported not-applicable with its reason, so
the engine's compliance counts (passed = enabled - failed - not applicable) are honest.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Iterable, Mapping, Sequence

from google.protobuf import empty_pb2
from pulumi.runtime import proto
from pulumi_policy import policy as pp

from ps019.controls.base import ConfigInvalid, Control, NotApplicable
from ps019.logging import configure_pack_logging, get_logger
from ps019.model import Diagnostic, Level, ResourceView, Severity, Violation
from ps019.pack import convert
from ps019.pack import stack as stack_facts
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
                 policies: list[pp.Policy], *, engine_address: str | None = None, **kwargs: Any) -> None:
        super().__init__(pack_name, pack_version, policies, pp.EnforcementLevel.ADVISORY, **kwargs)
        self.engine_address = engine_address  # the address the engine started the pack with (its argv)
        self.pack_name = pack_name
        self.pack_version = pack_version
        self.controls = controls
        self._policy_by_name = {p.name: p for p in policies}
        self._lock = threading.RLock()
        self._stack_tags: dict[str, str] = {}
        self._stack: stack_facts.StackFacts | None = None  # from ConfigureStack; None = never sent
        self._configured = False
        self._run: Run | None = None
        self._na_by_type: dict[str, list[tuple[str, str]]] = {}
        self._schemas_attached = False
        self._apply_config()

    # --- configuration -------------------------------------------------------------------------------------------

    def GetAnalyzerInfo(self, request, context):  # noqa: N802
        # The config schemas are generated from the pydantic models on first use, not at start-up.
        with self._lock:
            if not self._schemas_attached:
                self._schemas_attached = True
                try:
                    from ps019.pack import attach_config_schemas

                    attach_config_schemas(list(self._policy_by_name.values()), self.controls)
                except Exception as exc:  # noqa: BLE001 - the engine then skips validation; PS019-PACK-001 still runs
                    log.error("config_schema_failed", error=_describe(exc))
        return super().GetAnalyzerInfo(request, context)

    def Configure(self, request, context):  # noqa: N802 - gRPC method name
        response = super().Configure(request, context)
        with self._lock:
            self._apply_config()
            configure_pack_logging(self.settings)  # the log's destination is part of the pack config
            self._run = None  # a new Configure starts a new run (the stand-in reuses processes across runs)
        return response

    def ConfigureStack(self, request, context):  # noqa: N802
        response = super().ConfigureStack(request, context)
        import os

        with self._lock:
            self._stack_tags = dict(request.tags)
            self._stack = stack_facts.from_configure_stack(request, os.environ)
            self._run = None
        return response

    def _apply_config(self) -> None:
        """Resolve each control's level once per Configure; params are validated on first use (``_tables``)."""
        levels: dict[str, Level] = {}
        joins: set[str] = set()
        for control in self.controls:
            level = _PP_LEVEL[self._get_enforcement_level(self._policy_by_name[control.id])]
            levels[control.id] = level
            if level is not Level.DISABLED:
                joins.update(control.joins)  # resource types the enabled controls join (no params needed)
        self._join_types = frozenset(joins)
        self.levels = levels
        self._na_by_type = {}
        self.settings = Settings(raw=self._get_policy_config(SETTINGS_POLICY) or {})
        self._control_tables = None

    def _tables(self) -> tuple[dict[str | None, list[tuple[Control, Level, Any]]], list, list]:
        """(resource controls by type, stack controls, findings controls), each entry ``(control, level, params)``,
        built once per Configure, not once per resource, and not at start-up: validating params by the controls'
        config models loads pydantic. A control whose params break its model gets ``params=None`` and reports that
        instead of running with values nobody chose (and PS019-PACK-001 names the problem)."""
        with self._lock:
            if self._control_tables is not None:
                return self._control_tables
            resource: dict[str | None, list[tuple[Control, Level, Any]]] = {}
            stack: list[tuple[Control, Level, Any]] = []
            findings: list[tuple[Control, Level, Any]] = []
            errors: dict[str, str] = {}
            for control in self.controls:
                level = self.levels[control.id]
                if level is Level.DISABLED:
                    continue
                try:
                    params = control.params(self._get_policy_config(control.id))
                except ConfigInvalid as exc:
                    params, errors[control.id] = None, str(exc)
                entry = (control, level, params)
                if control.scope == "stack":
                    stack.append(entry)
                elif control.scope == "findings":
                    findings.append(entry)
                else:
                    for t in control.resource_types or (None,):
                        resource.setdefault(t, []).append(entry)
            self.settings.policy_errors = errors
            self._control_tables = (resource, stack, findings)
            return self._control_tables

    def _current_run(self) -> Run:
        with self._lock:
            if self._run is None:
                self._run = Run(self.pack_name, self.pack_version, self.settings, dict(self._stack_tags), self.levels,
                                stack=self._stack, engine_address=self.engine_address)
                if self._run.analysis_only:
                    # The engine shows a pack's stdout lines as info messages: say what kind of run this is.
                    print(f"ps019: {self._run.stack_facts.describe()}", flush=True)
            return self._run

    # --- not applicable ------------------------------------------------------------------------------------------

    def _type_not_applicable(self, rtype: str) -> list[tuple[str, str]]:
        """Enabled resource policies whose declaration excludes this type, with the reason (cached per type)."""
        cached = self._na_by_type.get(rtype)
        if cached is None:
            cached = []
            for control in self.controls:
                if control.scope != "resource" or self.levels.get(control.id) is Level.DISABLED:
                    continue
                if not control.applies_to(rtype):
                    kinds = ", ".join(control.resource_types or ())
                    cached.append((control.id, f"applies to {kinds}, not {rtype}"))
            self._na_by_type[rtype] = cached
        return cached

    # --- analysis ------------------------------------------------------------------------------------------------

    def Remediate(self, request, context):  # noqa: N802
        return proto.RemediateResponse()  # ps019 controls never rewrite resources (none is at the remediate level)

    def Analyze(self, request, context):  # noqa: N802
        response = proto.AnalyzeResponse()
        not_applicable: dict[str, str] = {}
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
                by_type = self._tables()[0]
                controls = by_type.get(None, []) + by_type.get(view.type, [])
                diagnostics = [d for c, level, params in controls
                               for d in self._run_control(c, level, params, view, ctx, not_applicable=not_applicable,
                                                          analysis_only=run.analysis_only)]
                # Waivers first, so findings controls (escalation) see which risks were accepted under an exception
                # or overridden under a grant.
                diagnostics = run.waive(diagnostics)
                diagnostics += self._run_findings_controls(diagnostics, ctx, view.urn, view.type, not_applicable,
                                                           run.analysis_only)
                diagnostics = run.finish_resource(view, diagnostics)
                if view.type in self._join_types:
                    run.seen.add(view)  # for controls that join later resources with this one (ctx.seen)
                not_applicable.update((name, reason) for name, reason in self._type_not_applicable(view.type)
                                      if name not in not_applicable)
        except Exception as exc:  # never a traceback into the engine; the attempt is still recorded
            diagnostic = _internal_error(getattr(request, "urn", ""), getattr(request, "type", ""), exc)
            not_applicable.clear()  # nothing is claimed about a resource the pack failed on
            log.error("analyze_failed", urn=request.urn, error=_describe(exc))
            diagnostics = run.internal_error(diagnostic, view) if run is not None else [diagnostic]
        _add(response, diagnostics, self.pack_name, self.pack_version, self._policy_by_name, resource_scope=True)
        _add_not_applicable(response, not_applicable, diagnostics)
        return response

    def AnalyzeStack(self, request, context):  # noqa: N802
        response = proto.AnalyzeResponse()
        not_applicable: dict[str, str] = {}
        run = None
        try:
            run = self._current_run()
            views = LazyViews(request.resources)
            ctx = run.context()
            root = next((r.urn for r in request.resources if r.type == "pulumi:pulumi:Stack"), None) or run.root_urn()
            diagnostics = []
            stack_controls = self._tables()[1]
            for control, level, params in stack_controls:
                diagnostics.extend(self._run_control(control, level, params, views, ctx, default_urn=root,
                                                     not_applicable=not_applicable,
                                                     analysis_only=run.analysis_only))
            diagnostics = run.waive(diagnostics)
            # Findings controls are resource policies to the engine: their stack results carry no summary of their own.
            diagnostics += self._run_findings_controls(diagnostics, ctx, root, "pulumi:pulumi:Stack", {},
                                                       run.analysis_only)
            diagnostics = run.finish_stack(diagnostics)
            not_applicable[SETTINGS_POLICY] = "holds the pack's settings and checks nothing itself (PS019-PACK-001 " \
                                              "validates them)"
            if run.analysis_only:
                for control, _, _ in stack_controls:
                    not_applicable.setdefault(control.id, run.stack_facts.describe())
        except Exception as exc:
            diagnostic = _internal_error("", "pulumi:pulumi:Stack", exc)
            not_applicable.clear()
            log.error("analyze_stack_failed", error=_describe(exc))
            diagnostics = run.internal_error(diagnostic, stack=True) if run is not None else [diagnostic]
        _add(response, diagnostics, self.pack_name, self.pack_version, self._policy_by_name, resource_scope=False)
        _add_not_applicable(response, not_applicable, diagnostics)
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

    def _run_findings_controls(self, diagnostics: list[Diagnostic], ctx: Any, urn: str, rtype: str,
                               not_applicable: dict[str, str], analysis_only: bool = False) -> list[Diagnostic]:
        findings_controls = self._tables()[2]
        if not findings_controls:
            return []
        out: list[Diagnostic] = []
        for control, level, params in findings_controls:
            if not diagnostics:
                not_applicable[control.id] = "no other policy found anything on this resource"
                continue
            for d in self._run_control(control, level, params, tuple(diagnostics), ctx, default_urn=urn,
                                       not_applicable=not_applicable, analysis_only=analysis_only):
                out.append(Diagnostic(control_id=d.control_id, level=d.level, severity=d.severity, urn=d.urn,
                                      message=d.message, resource_type=rtype))
        return out

    def _run_control(self, control: Control, level: Level, params: Mapping[str, Any], subject: Any, ctx: Any,
                     default_urn: str | None = None, not_applicable: dict[str, str] | None = None,
                     analysis_only: bool = False) -> Iterable[Diagnostic]:
        urn = default_urn if default_urn is not None else subject.urn
        rtype = "pulumi:pulumi:Stack" if default_urn is not None else subject.type
        if analysis_only and control.deployment_only:
            if not_applicable is not None:
                not_applicable[control.id] = ("checks a deployment, and `pulumi policy analyze` (no ConfigureStack) "
                                              "deploys nothing")
            return
        if params is None:  # its config broke its model (see _tables): it cannot run as configured
            yield Diagnostic(control_id=control.id, level=level, severity=control.severity, urn=urn,
                             message=f"{control.id} is not checked: its config in the policy pack config is invalid "
                                     f"({self.settings.policy_errors.get(control.id, 'see PS019-PACK-001')}). Fix "
                                     "that policy's entry of --policy-pack-config (`ps019 pack validate-config` "
                                     "lists every problem).", resource_type=rtype)
            return
        try:
            violations = list(control.check(subject, ctx, params) or ())
        except NotApplicable as na:
            if not_applicable is not None:
                not_applicable[control.id] = na.reason
            return
        except Exception as exc:
            # A control that cannot decide fails closed at its own level, and says why.
            log.error("control_failed", control=control.id, urn=urn, error=_describe(exc))
            violations = [Violation(f"{control.id} could not evaluate this resource ({_describe(exc)}); "
                                    "treating it as a violation. Please report this as a ps019 bug.")]
        for v in violations:
            v_level = Level.ADVISORY if v.details.get("unverifiable") or v.details.get("advisory") else level
            yield Diagnostic(control_id=control.id, level=v_level, severity=control.severity, urn=v.urn or urn,
                             message=v.message, resource_type=rtype,
                             unverifiable=bool(v.details.get("unverifiable")))


class LazyViews(Sequence):
    """The stack's resources (outputs) as ResourceViews, converted only if a stack control actually reads them: at
    10,000 resources converting every output costs seconds, and most stack controls only read the run's facts.
    ``of_type`` converts only the resources of the types asked for (``ps019.controls.base.views_of_type``): the S3
    bucket-policy control reads buckets, policies and access blocks, not every resource of a 50,000-resource stack."""

    def __init__(self, resources: Any) -> None:
        self._resources = resources
        self._views: tuple[ResourceView, ...] | None = None
        self._converted: dict[int, ResourceView] = {}
        self._by_type: dict[str, list[int]] | None = None

    def _view(self, index: int) -> ResourceView:
        view = self._converted.get(index)
        if view is None:
            view = self._converted[index] = convert.request_view(self._resources[index])
        return view

    def _all(self) -> tuple[ResourceView, ...]:
        if self._views is None:
            self._views = tuple(self._view(i) for i in range(len(self._resources)))
        return self._views

    def of_type(self, types: Iterable[str]) -> list[ResourceView]:
        """The resources whose type is in ``types``, in stack order, converting only those."""
        if self._by_type is None:
            by_type: dict[str, list[int]] = {}
            for i, r in enumerate(self._resources):
                by_type.setdefault(r.type, []).append(i)
            self._by_type = by_type
        indices = sorted(i for t in set(types) for i in self._by_type.get(t, ()))
        return [self._view(i) for i in indices]

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


def _add_not_applicable(response: Any, reasons: Mapping[str, str], diagnostics: Iterable[Diagnostic]) -> None:
    """A policy that reported a violation here is not also not-applicable (the engine counts it failed)."""
    failed = {d.control_id for d in diagnostics}
    for name, reason in reasons.items():
        if name not in failed:
            response.not_applicable.append(proto.PolicyNotApplicable(policy_name=name, reason=reason))


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
