"""One engine pass (a preview or an update) as the pack sees it.

The engine starts a fresh pack process for each pass, so per-process state would do; the stand-in reuses processes
across passes, so a run also restarts on every ConfigureStack/Configure. The run gathers facts once (the edges in
``ps019.pack.facts``), keeps every diagnostic, and hands the record to the evidence store at the end of the pass — or at
the moment an update is blocked, since the engine then never calls AnalyzeStack.

Every run that analysed anything ends with exactly one record (docs/evidence.md, "Completeness"):
- ``preview``/``update`` at AnalyzeStack, also when AnalyzeStack itself failed (PS019-PACK-000 in the results);
- ``blocked`` at the first mandatory violation of an update, including an internal error (PS019-PACK-000, e.g. a
  change request that crashes the gate): the update is blocked and says so in the record;
- ``preview``/``update`` with outcome ``interrupted`` when the engine calls Cancel (or the process gets SIGINT/SIGTERM)
  before the run's normal end -- a cancelled ``pulumi up``, or an update the engine abandoned after a failed step.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from typing import Any, Mapping


from ps019.controls.base import RunContext
from ps019.logging import get_logger
from ps019.model import Diagnostic, Level, ResourceView, SeenResources
from ps019.pack.stack import StackFacts, from_environment as stack_from_environment, offline_marker

log = get_logger("ps019.pack")


class Run:
    def __init__(self, pack_name: str, pack_version: str, settings: Any, stack_tags: Mapping[str, str],
                 levels: Mapping[str, Level], environ: Mapping[str, str] | None = None,
                 stack: StackFacts | None = None, engine_address: str | None = None) -> None:
        env = os.environ if environ is None else environ
        self.pack_name = pack_name
        self.pack_version = pack_version
        self.settings = settings
        self.levels = dict(levels)
        self.environ = dict(env)
        # ConfigureStack's facts (ps019.pack.stack); without one, an old engine's variables or an analysis.
        facts = stack if stack is not None else stack_from_environment(env, stack_tags)
        self.stack_facts = facts
        self.organization = facts.organization
        self.project = facts.project
        self.stack = facts.stack
        self.dry_run = facts.dry_run
        self.analysis_only = facts.analysis_only  # `pulumi policy analyze`: report only, write no record
        self.stack_config = dict(facts.config)
        self.secret_config_keys = facts.secret_keys
        self.stack_tags = dict(facts.tags) if stack is not None else dict(stack_tags)
        # Driven by ps019's offline stand-in (`ps019 analyze`/`up`)? Then its records have offline kinds: nothing is
        # deployed, and no deployment count or check may include them (ps019.pack.stack.offline_marker).
        self.offline, ignored = offline_marker(env, engine_address)
        self.ignored_markers = [ignored] if ignored else []
        log.info("stack_facts", stack=f"{facts.organization}/{facts.project}/{facts.stack}", source=facts.source,
                 sources=dict(facts.sources), analysis_only=facts.analysis_only, offline=self.offline is not None,
                 ignored=self.ignored_markers)
        self.started_at = datetime.now(timezone.utc)
        self.resources: list[ResourceView] = []
        self.seen = SeenResources()  # resources of the types controls join on, as they are analysed
        self.diagnostics: list[Diagnostic] = []
        self.blocked_at: str | None = None
        self.evidence: Any = None  # EmitResult of the record written for this run
        self.finished = False  # the run's one final record was handed to the evidence layer
        self.cancelled: str | None = None  # what interrupted the run (engine Cancel, SIGINT, ...)
        self.internal_errors: list[str] = []  # PS019-PACK-000 messages, kept for the record
        self._ctx: RunContext | None = None
        self._facts: Any = None
        self._lock = threading.RLock()

    @property
    def stack_ref(self) -> str:
        return f"{self.organization}/{self.project}/{self.stack}"

    def context(self) -> RunContext:
        """Facts for controls, gathered once per run (the gate decision is made here, on first use)."""
        with self._lock:
            if self._ctx is None:
                from ps019.pack import facts

                self._facts = facts.gather(self)
                self._ctx = self._facts.context
            return self._ctx

    def waive(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """Apply the run's exceptions and break-glass waivers (idempotent: a waived finding stays as it is)."""
        from ps019.pack import facts

        return facts.post_process(self._facts, diagnostics)

    def finish_resource(self, view: ResourceView, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        from ps019.pack import facts

        with self._lock:
            diagnostics = facts.post_process(self._facts, diagnostics)
            if self.finished:  # after the block or a Cancel: answered, but no longer part of the record
                return diagnostics
            if not self.resources and not self.analysis_only:  # the first resource: an unusable store blocks here
                diagnostics = diagnostics + facts.store_diagnostics(self, self._facts)
            self.resources.append(view)
            self.diagnostics.extend(diagnostics)
            self._block_if_mandatory(view.urn, diagnostics)
            return diagnostics

    def finish_stack(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        from ps019.pack import facts

        with self._lock:
            diagnostics = facts.post_process(self._facts, diagnostics)
            if self.finished:
                return diagnostics
            self.diagnostics.extend(diagnostics)
            self._finish("preview" if self.dry_run else "update")
            return diagnostics + facts.evidence_diagnostics(self, self._facts)

    def internal_error(self, diagnostic: Diagnostic, view: ResourceView | None = None, *,
                       stack: bool = False) -> list[Diagnostic]:
        """A PS019-PACK-000 failure (the gate, the adapter or the evidence layer crashed). The run fails closed and
        the attempt is still recorded: an update is blocked here with a ``blocked`` record; a failed AnalyzeStack
        still writes the pass's record. Returns the diagnostics to answer with. Never raises."""
        from ps019.pack import facts

        try:
            with self._lock:
                self.internal_errors.append(diagnostic.message)
                if self.finished:
                    return [diagnostic]
                if view is not None:
                    self.resources.append(view)
                self.diagnostics.append(diagnostic)
                if stack:
                    self._finish("preview" if self.dry_run else "update")
                    return [diagnostic] + facts.evidence_diagnostics(self, self._facts)
                self._block_if_mandatory(diagnostic.urn or self.root_urn(), [diagnostic])
                return [diagnostic]
        except Exception as exc:  # noqa: BLE001 - the engine must still get the fail-closed answer
            log.error("evidence_after_internal_error_failed", error=f"{type(exc).__name__}: {exc}")
            return [diagnostic]

    def cancel(self, reason: str) -> Any:
        """The engine's Cancel (or SIGINT/SIGTERM): stop, and record the run as interrupted unless its record was
        already written. Work in flight sees ``cancelled`` and stops at its next step. Idempotent."""
        self.cancelled = self.cancelled or reason  # visible to in-flight calls before the lock is taken
        with self._lock:
            if self.finished:
                return None
            log.warning("run_interrupted", stack=self.stack_ref, dry_run=self.dry_run, reason=reason,
                        analyzed=len(self.resources))
            self._finish("preview" if self.dry_run else "update", outcome="interrupted", spool_first=True)
            return self.evidence

    def _block_if_mandatory(self, urn: str, diagnostics: list[Diagnostic]) -> None:
        if not self.dry_run and self.blocked_at is None and any(d.level is Level.MANDATORY for d in diagnostics):
            # The engine stops this update here and will not call AnalyzeStack: record the block now.
            self.blocked_at = urn
            self._finish("blocked")

    def _finish(self, kind: str, outcome: str | None = None, spool_first: bool = False) -> None:
        from ps019.pack import facts

        self.finished = True
        if self.analysis_only:  # `pulumi policy analyze`: not a deployment, so no record (the servicer says so)
            log.info("analysis_only", reason=self.stack_facts.describe(), kind=kind, outcome=outcome)
            return
        if self.offline is not None:
            kind = "offline_" + kind
        self.evidence = facts.emit_record(self, self._facts, kind=kind, outcome=outcome, spool_first=spool_first)

    def root_urn(self) -> str:
        for v in self.resources:
            if v.type == "pulumi:pulumi:Stack":
                return v.urn
        return f"urn:pulumi:{self.stack}::{self.project}::pulumi:pulumi:Stack::{self.project}-{self.stack}"
