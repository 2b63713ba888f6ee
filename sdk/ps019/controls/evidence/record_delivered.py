"""PS019-EVID-001: the run's evidence record reached the evidence store.

The pack writes the record itself (at AnalyzeStack, or when an update is blocked). If the store is unreachable the
record is signed and kept in the local spool (``ps019 evidence flush`` delivers it later), and the run is told. For
production that is this control's level (blocking) unless ``evidence.outage_level`` is ``advisory``; other tiers get
an advisory. Reachability is checked when the run's facts are gathered, so an update is blocked at its first
resource, before anything changes -- not only at AnalyzeStack. A production store that the pack config does not pin
(``evidence.store_url``) blocks too, unless ``evidence.production_store_from_environment`` relaxes it. A record that
could not even be built fails closed at this control's level.
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


def store_violations(store_problem: str | None, store_error: str | None, store: str,
                     outage_level: str) -> list[Violation]:
    """Found when the run's facts are gathered, reported at its first resource (before anything changes):
    the production store is not pinned in the pack config, or the store cannot be reached."""
    out = []
    if store_problem:
        out.append(Violation(store_problem))
    if store_error:
        blocking = outage_level == "mandatory"
        out.append(Violation(
            f"the evidence store {store} cannot be reached ({store_error}); this run's record will be spooled "
            + ("and the change is blocked before any resource changes (PS-019 keeps a record of every production "
               "change). Restore the store, then re-run; `ps019 evidence flush` delivers the spool"
               if blocking else "(evidence.outage_level: advisory lets the change go ahead)"),
            details={"advisory": not blocking}))
    return out


def checkpoint_violations(problems: Sequence[tuple[str, str]], store: str, *, production: bool,
                          outage_level: str) -> list[Violation]:
    """Found when the run's facts are gathered, reported at its first resource: the store is behind the newest
    signed checkpoints of this stack's chains (``behind``: records removed, head rewound, store rolled back -- a cut
    break-glass close would revive its grant), or the checkpoint sink cannot be read (``unreadable``). Blocking for
    production; an unreadable sink is an outage, so ``outage_level: advisory`` relaxes that one."""
    out = []
    for kind, reason in problems:
        if kind == "behind":
            blocking = production
            message = (f"the evidence store {store} is behind its signed checkpoints: {reason}. Records were removed "
                       "or the store was rolled back, so its grants, exceptions and history cannot be trusted"
                       + ("; the change is blocked before any resource changes. Restore the store, then check it "
                          "with `ps019 evidence verify --checkpoints-from` the checkpoint sink" if blocking else ""))
        else:
            blocking = production and outage_level == "mandatory"
            message = (f"the evidence store {store} cannot be checked against its signed checkpoints ({reason})"
                       + ("; the change is blocked before any resource changes (evidence.outage_level: advisory "
                          "lets it go ahead)" if blocking else ""))
        out.append(Violation(message, details={"advisory": not blocking}))
    return out


def check(resources: Sequence[ResourceView], ctx: RunContext, params: dict) -> list[Violation]:
    # Evaluated by the adapter right after the record is written (the record cannot contain its own delivery
    # status); see ps019.pack.facts.evidence_diagnostics.
    return []


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
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
