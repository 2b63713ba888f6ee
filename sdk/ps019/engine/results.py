"""What an engine pass produces: violations, remediations, per-resource policy summaries, timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ps019.engine.resources import StackRef
from ps019.model import Level, Severity


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


@dataclass(frozen=True)
class PolicySummary:
    """The engine's per-resource (``urn``) or stack (``urn == ""``) policy summary (pulumi
    ``pkg/resource/analyzer/summary.go``): of the pack's policies of that kind that are not disabled, those with a
    violation failed, those the pack reported not applicable did not run, and every other one passed. The engine
    drops the not-applicable reasons; the stand-in keeps them."""

    urn: str
    kind: str  # "resource" | "stack"
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    not_applicable: Mapping[str, str]  # policy name -> the pack's reason


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
    summaries: list[PolicySummary] = field(default_factory=list)
    cancelled: bool = False  # the run was interrupted: the engine sent Cancel and stopped
    mode: str = "deployment"  # "deployment" (preview/update) | "analyze" (`pulumi policy analyze`: no ConfigureStack)
    runtime: str = "python"
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(d.mandatory for d in self.diagnostics)

    @property
    def mandatory(self) -> list[EngineDiagnostic]:
        return [d for d in self.diagnostics if d.mandatory]

    def diagnostics_for(self, urn: str) -> list[EngineDiagnostic]:
        return [d for d in self.diagnostics if d.urn == urn]

    @property
    def compliance(self) -> dict[str, int]:
        """Policy evaluations over every summary: passed, failed, not applicable (``pulumi policy compliance``)."""
        counts = {"passed": 0, "failed": 0, "not_applicable": 0}
        for s in self.summaries:
            counts["passed"] += len(s.passed)
            counts["failed"] += len(s.failed)
            counts["not_applicable"] += len(s.not_applicable)
        return counts

    def summary_for(self, urn: str) -> PolicySummary | None:
        return next((s for s in self.summaries if s.urn == urn), None)


@dataclass
class UpResult:
    """``pulumi up``: a preview pass, then (if the preview did not fail) an update pass."""

    preview: PassResult | None
    update: PassResult | None

    @property
    def failed(self) -> bool:
        return any(p is not None and p.failed for p in (self.preview, self.update)) or self.update is None
