"""PS019-EVID-001: the run's evidence record reached the evidence store.

The pack writes the record itself (at AnalyzeStack, or when an update is blocked). If the store is unreachable the
record is signed and kept in the local spool (``ps019 evidence flush`` delivers it later), and the run is told: an
advisory by default, or this control's level for production when ``evidence.outage_level`` is ``mandatory``. A record
that could not even be built fails closed at this control's level.
"""

from __future__ import annotations

from typing import Any, Sequence

from ps019.controls.base import Control, RunContext
from ps019.model import Level, ResourceView, Severity, Violation


def violations_for(result: Any, is_production: bool) -> list[Violation]:
    status = getattr(result, "status", None)
    if status == "stored":
        return []
    if status == "spooled":
        advisory = not (is_production and getattr(result, "level", "advisory") == "mandatory")
        return [Violation(f"the evidence store could not be reached; record {result.record_id} was signed and "
                          f"spooled locally ({result.message}). Run `ps019 evidence flush` once the store is back.",
                          details={"advisory": advisory})]
    return [Violation(f"the evidence record for this run could not be written ({getattr(result, 'message', status)}). "
                      "PS-019 requires a retained record of every production deployment; fix the evidence settings "
                      "(ps019-settings.evidence) or the store, then re-run.")]


def check(resources: Sequence[ResourceView], ctx: RunContext, params: dict) -> list[Violation]:
    # Evaluated by the adapter right after the record is written (the record cannot contain its own delivery
    # status); see ps019.pack.facts.evidence_diagnostics.
    return []


CONTROL = Control(
    id="PS019-EVID-001",
    title="The change's evidence record is retained in the evidence store",
    clause="PS-019 §3 Production deployments must retain timestamps, actor identity, artifact version, environment "
           "target, and approver evidence; §4 Immutable deployment records",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="An auditor samples the change population from the evidence store; a change whose record never "
              "arrives is a change nobody can prove was authorized.",
    remediation="Make the evidence store reachable (see the error), then run `ps019 evidence flush` to deliver "
                "spooled records; check ps019-settings.evidence.store_url.",
    check=check,
    scope="stack",
)
