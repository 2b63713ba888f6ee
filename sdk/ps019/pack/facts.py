"""The edges of a run: everything that reads files, the environment, AWS or the evidence store happens here, once,
before the first control runs. Controls only ever see the resulting frozen ``RunContext``.

Every edge reports instead of raising: a missing change request, an unreachable store or an AWS error becomes a fact
("could not be verified because …") that a control turns into a precise violation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, Iterable, Mapping


from ps019.controls.base import RunContext
from ps019.logging import get_logger
from ps019.model import Diagnostic, Level, ResourceView

log = get_logger("ps019.pack")

PREVIEW_LINK_WINDOW = timedelta(hours=12)


@dataclass
class History:
    """Facts read from the evidence store for controls (promotion) and for linking records."""

    store_url: str | None = None
    error: str | None = None
    store_source: str | None = None  # pack-config | environment | default (see EvidenceSettings.target)
    relaxed: list = field(default_factory=list)  # production defaults relaxed by an explicit setting
    store_problem: str | None = None  # why the production store setting itself blocks the run (not pinned)
    promotion: Any = None  # ps019.evidence.audit promotion facts (prior updates of the artifact)
    exceptions: Any = None  # ps019.gate.exceptions.ExceptionsSummary: exceptions in force and those ignored (why)
    preview_record_id: str | None = None
    # (kind, reason) when the store is behind its published checkpoints for this stack's chains, or they cannot be
    # read (ps019.evidence.witness.behind_checkpoints); empty without evidence.checkpoints
    checkpoint_problems: list = field(default_factory=list)
    # With an approved plan bound (PS019-GATE-020): urn -> inputs digest of the resource's last recorded successful
    # deployment, or why the store could not be read (a string); None when no plan is bound
    applied_inputs: Any = None


@dataclass
class Facts:
    context: RunContext
    deployer: Any  # ps019.gate.decision.Deployer: an STS-verified ARN beats a CI identity beats the local user
    ci: Any = None
    identity: Any = None
    grant: Any = None
    decision: Any = None
    history: History = field(default_factory=History)
    waivers: list = field(default_factory=list)
    commit: str | None = None
    plan_digest: str | None = None


def gather(run: Any) -> Facts:
    from ps019.gate import breakglass, decision as gate_decision, edges as gate_edges, exceptions as exc_mod
    from ps019.gate.ci import detect_ci
    from ps019.gate.settings import classify_environment

    settings = run.settings
    env = run.environ
    now = datetime.now(timezone.utc)
    environments = _section(settings, "environments")
    gate_settings = _section(settings, "gate")
    tier, tier_source = classify_environment(run.organization, run.project, run.stack, run.stack_tags,
                                             run.stack_config, environments)

    identity = _deploy_identity(run, settings)
    sts_arn = identity.arn if identity is not None and identity.error is None else None
    effective_gate = gate_settings or _default_gate_settings()
    unknown_as = getattr(environments, "unknown_treated_as", "production")

    store, history = _open_store(settings, tier, env)
    history.checkpoint_problems = _checkpoint_problems(store, run.stack_ref)
    ci_identity = _ci_identity(effective_gate, env, now, store, history, run)
    inputs = gate_edges.gate_inputs(
        stack_ref=run.stack_ref, tier=tier, tier_source=tier_source, dry_run=run.dry_run, now=now, environ=env,
        stack_config=run.stack_config, sts_identity=sts_arn, unknown_treated_as=unknown_as,
        ci_identity=ci_identity, oidc_required=effective_gate.oidc_required(tier, unknown_as))
    deployer, ci = inputs.deployer, inputs.ci
    controls = tuple(run.levels)
    presented_grant = breakglass.presented_grant_id(env, run.stack_config)
    gate_records = _store_read(store, history, breakglass.load_break_glass_records, run.stack_ref, presented_grant)
    grant = breakglass.check_break_glass(
        gate_records, run.stack_ref, deployer.identity, now, gate_settings, _section(settings, "breakGlass"),
        grant_id=presented_grant, known_controls=controls, deployer_verified_by=deployer.verified_by,
        sts_arn=deployer.sts_arn)
    if history.error:
        grant = dataclasses.replace(grant, valid=False, problems=grant.problems + (history.error,))
    exception_records = _store_read(store, history, exc_mod.load_exception_records, run.stack_ref)
    exceptions = exc_mod.summarize(exception_records, run.stack_ref, now, gate_settings,
                                   _section(settings, "exceptions"), known_controls=controls,
                                   control_severities=_control_severities(),
                                   tier=effective_gate.rules_tier(tier, unknown_as),
                                   deployer_names=deployer.all_names())
    history.exceptions = exceptions

    inputs = dataclasses.replace(inputs, break_glass=grant,
                                 prior_uses=_prior_uses(store, run, inputs.change_request, now, effective_gate))
    decision = gate_decision.decide_gate(inputs, effective_gate)
    if decision.bound_plan is not None:
        history.applied_inputs = _applied_inputs(store, history, run)
    history.promotion = _promotion_facts(store, history, run, {"git_commit": inputs.artifact_commit,
                                                                "source_digest": _source_digest(env)})
    if not run.dry_run:
        history.preview_record_id = _preview_link(store, run, inputs.artifact_commit, now)

    ctx = RunContext(
        organization=run.organization, project=run.project, stack=run.stack, dry_run=run.dry_run,
        tier=tier, tier_source=tier_source, stack_config=run.stack_config, stack_tags=run.stack_tags, now=now,
        gate=decision, deploy_identity=identity, settings=settings, history=history, seen=run.seen,
    )
    facts = Facts(context=ctx, deployer=deployer, ci=ci, identity=identity, grant=grant, decision=decision,
                  history=history, commit=inputs.artifact_commit, plan_digest=inputs.plan_digest)
    facts.waivers = exceptions.waivers() + _grant_waivers(grant)
    log.info("run_facts", stack=run.stack_ref, dry_run=run.dry_run, tier=tier, deployer=deployer.identity,
             verified_by=deployer.verified_by, grant=grant.grant_id, grant_valid=grant.valid,
             exceptions=len(exceptions.valid), gate="blocked" if decision.blocked else "allowed",
             store_error=history.error)
    return facts


def _ci_identity(gate_settings: Any, env: Any, now: datetime, store: Any, history: History, run: Any) -> Any:
    """The CI job's verified OIDC ID token (``ps019.oidc``), checked against earlier updates of the stack in the
    evidence store so that a token (jti) or a CI run cannot be used twice. None when no issuer is configured."""
    oidc = getattr(gate_settings, "oidc", None)
    if oidc is None or not oidc.issuers:
        return None
    from ps019.oidc import ci_identity

    found = ci_identity(oidc, env, now)
    if found is None or not found.verified or not oidc.replay_protection:
        return found
    problem = _replay_problem(store, history, run, found, now)
    return dataclasses.replace(found, replay_problem=problem) if problem else found


def _prior_uses(store: Any, run: Any, source: Any, now: datetime, gate_settings: Any = None) -> tuple[str, ...]:
    """Updates of this stack already made under the presented change request (by its signed body's digest), whatever
    their outcome: what a single-use rule refuses. An update changes resources before its record is written, so one
    that ended ``failed`` (a stack-level finding) or ``interrupted`` (a cancelled job) has used the request too.
    The look-back does not start at the request's own ``created_at`` (its author writes it) but where the request
    could first have been used: its expiry minus the longest lifetime, minus the clock skew. An unreadable store is
    an unknown use (fail closed: an earlier use cannot be ruled out)."""
    from ps019.gate import change_request as cr_mod

    if store is None or source is None or not source.data:
        return ()
    request, _ = cr_mod.parse_change_request(source.data)
    if request is None:
        return ()
    digest = cr_mod.request_digest(request)
    lifetime = getattr(gate_settings, "max_change_request_lifetime", None) or timedelta(days=14)
    skew = getattr(gate_settings, "clock_skew", None) or timedelta(minutes=5)
    since = min(request.created_at or now, request.expires_at - lifetime) - skew
    try:  # by position in the stack's chain, never by the store's columns: a hidden use would grant another
        found = store.chain_since(run.stack_ref, since, kind="update")
    except Exception as exc:  # noqa: BLE001 -- fail closed: an earlier use cannot be ruled out
        return (f"<unknown: the evidence store could not be read ({type(exc).__name__}: {exc})>",)
    uses = []
    for stored in found:
        record = stored.record if hasattr(stored, "record") else stored
        for ref in getattr(record, "approvals", None) or ():
            presented = ((getattr(ref, "details", None) or {}).get("presented") or {}).get("change_request") or {}
            if getattr(ref, "kind", None) == "change_request" and presented.get("digest") == digest:
                uses.append(record.record_id)
    return tuple(uses)


def _applied_inputs(store: Any, history: History, run: Any, depth: int = 50) -> dict[str, str] | str:
    """urn -> inputs digest from the stack's newest succeeded update records (the newest record naming a resource
    wins): what a resource that the approved plan leaves unchanged must still have. A string says why it is unknown."""
    if store is None:
        return history.error or "no evidence store"
    try:
        found = store.query(stack=run.stack_ref, kind="update", limit=depth)
    except Exception as exc:  # noqa: BLE001
        return f"evidence store read failed: {type(exc).__name__}"
    applied: dict[str, str] = {}
    for stored in found:  # newest first
        record = stored.record if hasattr(stored, "record") else stored
        if record.outcome != "succeeded":
            continue
        for change in record.resources or ():
            if change.inputs_digest:
                applied.setdefault(change.urn, change.inputs_digest)
    return applied


def _replay_problem(store: Any, history: History, run: Any, found: Any, now: datetime) -> str | None:
    if store is None:
        return f"it cannot be checked against earlier runs ({history.error or 'no evidence store'})"
    since = (found.issued_at or now) - timedelta(days=1)
    try:  # by position in the stack's chain, never by the store's columns: a hidden record would allow a replay
        earlier = store.chain_since(run.stack_ref, since, kind="update")
    except Exception as exc:  # noqa: BLE001
        return f"it cannot be checked against earlier runs (evidence store read failed: {type(exc).__name__})"
    for stored in earlier:
        record = stored.record if hasattr(stored, "record") else stored
        for ref in getattr(record, "approvals", None) or ():
            seen = (getattr(ref, "details", None) or {}).get("ci_identity") or {}
            if getattr(ref, "kind", None) == "change_request" and found.jti and seen.get("jti") == found.jti \
                    and seen.get("issuer") == found.issuer:
                return f"token {found.jti} was already used by update record {record.record_id} (a replayed token)"
        ci = getattr(record, "ci", None)
        # any outcome: a failed or interrupted update of the run changed resources too
        if found.run_key and ci is not None and ci.run_id == found.run_key and ci.provider == found.provider:
            return (f"CI run {found.run_key} already deployed {run.stack_ref} (update record {record.record_id}); "
                    "a run deploys a stack once")
    return None


def _control_severities() -> dict[str, Any]:
    from ps019.controls.registry import all_controls

    return {c.id: c.severity for c in all_controls()}


def _default_gate_settings() -> Any:
    # Only reached when ps019-settings.gate is invalid: PS019-PACK-001 reports that; the gate still runs, with the
    # secure defaults, rather than not at all.
    from ps019.gate.settings import GateSettings

    return GateSettings()


# --- per-resource and per-stack post-processing ---------------------------------------------------------------------


def post_process(facts: Facts, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Exceptions and break-glass waivers, applied in one place to every diagnostic (ps019.gate.waivers)."""
    if not facts.waivers:
        return diagnostics
    from ps019.gate.waivers import apply_waivers

    return [apply_waivers(d, facts.waivers) for d in diagnostics]


# --- the evidence record -------------------------------------------------------------------------------------------


def emit_record(run: Any, facts: Facts | None, kind: str, outcome: str | None = None,
                spool_first: bool = False) -> Any:
    """Build, sign and store this run's record (or spool it if the store is down). Never raises.
    ``spool_first``: written to the spool before the store is tried (a signal's grace period may end mid-append)."""
    from ps019 import evidence

    started = time.perf_counter()
    try:
        record = build_record(run, facts, kind, outcome=outcome)
        result = evidence.emit(record, _emit_settings(run, facts, record.environment), spool_first=spool_first)
        log.info("evidence_written", record_id=result.record_id, status=result.status, kind=kind,
                 outcome=record.outcome, resources=len(record.resources),
                 seconds=round(time.perf_counter() - started, 4))  # bench/pack_bench.py reads the cost from here
        return result
    except Exception as exc:  # noqa: BLE001 - reported as a violation by evidence_diagnostics
        log.error("evidence_failed", error=f"{type(exc).__name__}: {exc}")
        return _FailedEmit(f"{type(exc).__name__}: {exc}")


@dataclass
class _FailedEmit:
    message: str
    status: str = "failed"
    record_id: str | None = None
    level: str = "mandatory"


def build_record(run: Any, facts: Facts | None, kind: str, outcome: str | None = None) -> Any:
    from ps019 import evidence
    from ps019.evidence import record as rec

    now = datetime.now(timezone.utc)
    diagnostics = list(run.diagnostics)
    mandatory = [d for d in diagnostics if d.level is Level.MANDATORY]
    phase = kind.removeprefix(rec.OFFLINE_KIND_PREFIX)  # an offline run's pass: preview | update | blocked
    if outcome is not None:
        pass  # e.g. "interrupted": the run ended before its normal end
    elif phase == "blocked":
        outcome = "blocked"
    elif phase == "preview":
        outcome = "failed" if mandatory else "previewed"
    else:
        outcome = "failed" if mandatory else "succeeded"
    decision = facts.decision if facts else None
    ctx = facts.context if facts else None
    record = evidence.EvidenceRecord(
        kind=kind,
        started_at=run.started_at,
        ended_at=now,
        organization=run.organization,
        project=run.project,
        stack=run.stack,
        environment=ctx.tier if ctx else _fallback_tier(run),
        change_class=getattr(decision, "change_class", None),
        outcome=outcome,
        blocked_reason=(f"{mandatory[0].control_id}: {mandatory[0].message}" if mandatory and phase == "blocked"
                        else None),
        actor=_actor(facts),
        ci=_ci(facts),
        artifact=rec.Artifact(
            git_commit=facts.commit if facts else None,
            source_digest=_source_digest(run.environ),
            policy_pack=rec.PolicyPackRef(name=run.pack_name, version=run.pack_version, code_digest=pack_code_digest()),
            iam_data_version=_iam_data_version(),
            update_plan_digest=facts.plan_digest if facts else None,
        ),
        resources=[evidence.resource_change(v) for v in run.resources],
        policy_results=[evidence.policy_result(d) for d in diagnostics],
        forbidden_values=_secret_values(run.resources),
        recording=_recording(run, facts),
        offline=_offline(run),
    )
    if facts is not None:
        _attach_gate(record, facts)
        if facts.history.preview_record_id:
            record.links["preview_record_id"] = facts.history.preview_record_id
    return record


def _emit_settings(run: Any, facts: Facts | None, environment: str) -> Any:
    """The evidence settings with the store this run's facts chose (production: the pack config's, never an
    environment variable's)."""
    from ps019.evidence import EvidenceSettings

    evidence_settings = _section(run.settings, "evidence") or EvidenceSettings()
    url = (facts.history.store_url if facts is not None
           else evidence_target(run.settings, environment, run.environ)[0])
    return evidence_settings.model_copy(update={"store_url": url})


def _recording(run: Any, facts: Facts | None) -> Any:
    """How this record came to be: which store setting chose the store, production defaults relaxed by explicit
    settings, interruption, internal errors (the run failed closed)."""
    from ps019.evidence.record import Recording

    if facts is not None:
        source, relaxed = facts.history.store_source, list(facts.history.relaxed)
        relaxed += list(getattr(facts.decision, "relaxed", ()) or ())
    else:
        _, source, relaxed, _ = evidence_target(run.settings, _fallback_tier(run), run.environ)
    stack_facts = getattr(run, "stack_facts", None)
    return Recording(store_source=source, relaxed=relaxed, interrupted_by=getattr(run, "cancelled", None),
                     internal_errors=list(getattr(run, "internal_errors", ())),
                     stack_facts=dict(getattr(stack_facts, "sources", None) or {}),
                     ignored=list(getattr(run, "ignored_markers", ())))


def _offline(run: Any) -> Any:
    """How an offline run was driven (ps019.pack.stack.offline_marker), or None for a run the engine drove."""
    marker = getattr(run, "offline", None)
    if marker is None:
        return None
    from ps019.evidence.record import OfflineRun

    return OfflineRun(engine=marker.engine, source=marker.source,
                      placeholders={k: list(v) for k, v in marker.placeholders.items()})


def _fallback_tier(run: Any) -> str:
    """The stack's tier when the run's facts could not be gathered (the gate crashed): the record still says which
    environment the attempt concerned."""
    try:
        from ps019.gate.settings import classify_environment

        return classify_environment(run.organization, run.project, run.stack, run.stack_tags, run.stack_config,
                                    _section(run.settings, "environments"))[0]
    except Exception:  # noqa: BLE001
        return "unknown"


def _attach_gate(record: Any, facts: Facts) -> None:
    """What was presented, what was verified and why it failed: the change request (with the whole gate decision in
    its details), every approval verified or rejected with the reason, the grant, the exceptions."""
    from ps019.evidence import record as rec

    decision = facts.decision
    if decision is not None:
        view = decision.evidence()
        cr = (view.get("presented") or {}).get("change_request") or {}
        record.change_request = cr.get("ticket")
        record.rollback_plan = cr.get("rollback_plan")
        record.monitoring_plan = cr.get("monitoring_plan")
        refs = [rec.VerifiedReference(
            ref_id=cr.get("ticket") or "-", kind="change_request", presented=bool(cr),
            verified=bool(cr) and not view["violations"].get("PS019-GATE-001"),
            failures=list(view["violations"].get("PS019-GATE-001", [])), details=view)]
        for a in view.get("verified_approvals", []):
            refs.append(rec.VerifiedReference(
                ref_id=f"approval[{a.get('index')}]", kind="approval", verified="excluded" not in a,
                failures=[a["excluded"]] if "excluded" in a else [], identity=a.get("identity") or a.get("approver"),
                role=a.get("role"), keyid=a.get("key_id"), details={"signed_at": a.get("signed_at")}))
        for a in view.get("rejected_approvals", []):
            refs.append(rec.VerifiedReference(
                ref_id=f"approval[{a.get('index')}]", kind="approval", verified=False, failures=[a.get("reason", "")],
                identity=a.get("approver"), role=a.get("role"), keyid=a.get("key_id"),
                details={"signed_at": a.get("signed_at")}))
        record.approvals = refs
    if facts.grant is not None and facts.grant.grant_id:
        record.break_glass = rec.VerifiedReference.model_validate(facts.grant.evidence_reference())
    if facts.history.exceptions is not None:
        record.exceptions = [rec.VerifiedReference.model_validate(e)
                             for e in facts.history.exceptions.evidence_references()]


def store_diagnostics(run: Any, facts: Facts | None) -> list[Diagnostic]:
    """PS019-EVID-001 at the run's first resource, before anything changes: the production store is not pinned in
    the pack config, or the store cannot be reached (so this run's record can only be spooled). Mandatory for
    production unless relaxed explicitly (evidence.production_store_from_environment, evidence.outage_level)."""
    from ps019.controls.evidence import record_delivered

    control = record_delivered.CONTROL
    level = run.levels.get(control.id, control.level)
    if facts is None or level is Level.DISABLED:
        return []
    ctx, history = facts.context, facts.history
    evidence_settings = _section(run.settings, "evidence")
    outage = evidence_settings.outage_level_for(ctx.tier) if evidence_settings is not None else "advisory"
    violations = record_delivered.store_violations(history.store_problem, history.error, _safe(history.store_url),
                                                   outage_level=outage)
    violations += record_delivered.checkpoint_violations(history.checkpoint_problems, _safe(history.store_url),
                                                         production=ctx.tier == "production", outage_level=outage)
    return [Diagnostic(control_id=control.id, level=Level.ADVISORY if v.details.get("advisory") else level,
                       severity=control.severity, urn=run.root_urn(), message=v.message,
                       resource_type="pulumi:pulumi:Stack") for v in violations]


def _safe(url: str | None) -> str:
    from ps019.evidence.emit import safe_url

    return safe_url(url) if url else "(none)"


def evidence_diagnostics(run: Any, facts: Facts | None) -> list[Diagnostic]:
    """Tell the run when its record could not reach the store (PS019-EVID-001)."""
    from ps019.controls.evidence import record_delivered

    result = run.evidence
    control = record_delivered.CONTROL
    level = run.levels.get(control.id, control.level)
    if result is None or level is Level.DISABLED:
        return []
    ctx = facts.context if facts else None
    violations = record_delivered.violations_for(result, is_production=bool(ctx and ctx.is_production))
    return [Diagnostic(control_id=control.id,
                       level=Level.ADVISORY if v.details.get("advisory") else level,
                       severity=control.severity, urn=run.root_urn(), message=v.message,
                       resource_type="pulumi:pulumi:Stack") for v in violations]


# --- small edges ---------------------------------------------------------------------------------------------------


def _section(settings: Any, name: str) -> Any:
    if settings is None:
        return None
    try:
        return settings.section(name)
    except ImportError:
        return None


def _deploy_identity(run: Any, settings: Any) -> Any:
    from ps019.aws.identity import lookup_deploy_identity

    identity_settings = _section(settings, "identity")
    if identity_settings is None or not identity_settings.should_lookup(run.stack_config, run.environ):
        return None
    return lookup_deploy_identity(identity_settings)


def _program_dir(env: dict) -> Path | None:
    for candidate in (env.get("PS019_PROGRAM_DIR"), env.get("PWD")):
        if candidate and (Path(candidate) / "Pulumi.yaml").is_file():
            return Path(candidate)
    return None


_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pulumi", ".mypy_cache", ".pytest_cache"}


def _source_digest(env: dict) -> str | None:
    """sha256 over (relative path, file sha256) of the program's source tree, skipping VCS and virtualenv folders."""
    root = _program_dir(env)
    if root is None:
        return None
    return _tree_digest(str(root))


@cache
def _tree_digest(root: str) -> str | None:
    digest = hashlib.sha256()
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as fh:
                    file_digest = hashlib.sha256(fh.read()).hexdigest()
            except OSError:
                continue
            digest.update(f"{os.path.relpath(path, root)}\0{file_digest}\n".encode())
            count += 1
            if count > 20000:
                return None  # not a program tree we should be hashing on every run
    return digest.hexdigest()


@cache
def pack_code_digest() -> str:
    """sha256 over the ps019 SDK's Python sources and the pack directory (what actually decided)."""
    import ps019

    sdk_root = Path(ps019.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(sdk_root.rglob("*.py")):
        if "fixtures" in path.parts:
            continue
        digest.update(f"{path.relative_to(sdk_root)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    pack_dir = Path.cwd()
    for name in ("PulumiPolicy.yaml", "__main__.py"):
        if (pack_dir / name).is_file():
            digest.update(f"pack/{name}\0".encode())
            digest.update(hashlib.sha256((pack_dir / name).read_bytes()).digest())
    return digest.hexdigest()


@cache
def _iam_data_version() -> str | None:
    try:
        from ps019.iam import IAM_DATA_VERSIONS  # action index + AWS managed-policy dataset

        return IAM_DATA_VERSIONS
    except ImportError:
        return None


def evidence_target(settings: Any, tier: str | None, environ: Any = None
                    ) -> tuple[str | None, str | None, list, str | None]:
    """(store URL, source, relaxations, problem) for this run's records: for production only the pack config names
    the store (ps019.evidence.settings.EvidenceSettings.target)."""
    evidence_settings = _section(settings, "evidence")
    if evidence_settings is None:  # invalid evidence settings: PS019-PACK-001 says so; write where we can
        from ps019.evidence.settings import default_store_url

        return default_store_url(), "default", [], None
    return evidence_settings.target(tier, environ)


def _open_store(settings: Any, tier: str | None = None, environ: Any = None) -> tuple[Any, History]:
    from ps019.evidence import open_store

    url, source, relaxed, problem = evidence_target(settings, tier, environ)
    history = History(store_url=url, store_source=source, relaxed=list(relaxed), store_problem=problem)
    try:
        evidence_settings = _section(settings, "evidence")
        store = open_store(url, evidence_settings)
        # grants, exceptions, previews and promotion history count only as signed by a trusted evidence key, with
        # every indexed column equal to the signed document (ps019.evidence.store.checked)
        from ps019.evidence import EvidenceSettings

        store.trust((evidence_settings or EvidenceSettings()).public_keys())
        return store, history
    except Exception as exc:  # noqa: BLE001 - reported: grants and exceptions cannot be verified
        history.error = f"evidence store unreachable ({type(exc).__name__}: {exc}); break-glass grants and " \
                        "exceptions cannot be verified"
        return None, history


def _checkpoint_problems(store: Any, stack_ref: str) -> list:
    """Is the store behind the newest signed checkpoints of this stack's chains (its deployments and its
    governance records)? Checked before anything changes: a rolled-back store could revive a closed grant."""
    if store is None:
        return []
    from ps019.evidence.record import GOVERNANCE_PREFIX
    from ps019.evidence.witness import behind_checkpoints

    try:
        return behind_checkpoints(store, [stack_ref, GOVERNANCE_PREFIX + stack_ref])
    except Exception as exc:  # noqa: BLE001 - fail closed: the store cannot be checked against its checkpoints
        return [("unreadable", f"{type(exc).__name__}: {exc}")]


def _store_read(store: Any, history: History, reader: Any, *args: Any) -> list:
    if store is None:
        return []
    try:
        return reader(store, *args)
    except Exception as exc:  # noqa: BLE001
        history.error = f"evidence store read failed ({type(exc).__name__}: {exc}); break-glass grants and " \
                        "exceptions cannot be verified"
        return []


def _promotion_facts(store: Any, history: History, run: Any, artifact: dict) -> Any:
    if store is None:
        return None
    try:
        from ps019.evidence.audit import load_promotion_facts
    except ImportError:
        return None
    try:
        evidence_settings = _section(run.settings, "evidence")
        keys = evidence_settings.public_keys() if evidence_settings is not None else None
        kinds = ("update", "offline_update") if getattr(run, "offline", None) is not None else ("update",)
        return load_promotion_facts(store, run.organization, run.project, artifact, public_keys=keys, kinds=kinds)
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}


def _preview_link(store: Any, run: Any, commit: str | None, now: datetime) -> str | None:
    """The preview this update follows (``pulumi up`` runs a preview pass first, with its own pack process)."""
    if store is None:
        return None
    try:
        # An offline update follows an offline preview (`ps019 up`); a deployment, the engine's own preview.
        kind = "offline_preview" if getattr(run, "offline", None) is not None else "preview"
        found = store.query(stack=run.stack_ref, kind=kind, since=now - PREVIEW_LINK_WINDOW, limit=20)
    except Exception:  # noqa: BLE001
        return None
    candidates = [s.record if hasattr(s, "record") else s for s in found]
    candidates = [r for r in candidates if r.artifact is None or commit is None or r.artifact.git_commit == commit]
    candidates.sort(key=lambda r: r.started_at)
    return candidates[-1].record_id if candidates else None


def _grant_waivers(grant: Any) -> list:
    from ps019.gate.waivers import waivers_from_grant

    return waivers_from_grant(grant)


def _actor(facts: Facts | None) -> Any:
    from ps019.evidence import Identity

    if facts is None or facts.deployer.identity is None:
        return None
    d = facts.deployer
    identity = facts.identity
    if d.verified_by == "sts":
        return Identity(id=d.identity, kind="aws-sts", verified=True, verified_by="sts:GetCallerIdentity",
                        account=getattr(identity, "account", None), role=getattr(identity, "role_name", None))
    if d.verified_by == "oidc":
        token = facts.decision.ci_identity if facts.decision is not None else None
        return Identity(id=d.identity, kind="ci-oidc", verified=True,
                        verified_by=f"CI OIDC ID token of {getattr(token, 'issuer', None)} "
                                    f"(sub {getattr(token, 'subject', None)}, jti {getattr(token, 'jti', None)})",
                        account=getattr(identity, "account", None), role=getattr(identity, "role_name", None))
    if d.verified_by == "ci":
        return Identity(id=d.identity, kind="ci-env", verified=False, verified_by="CI environment variables")
    return Identity(id=d.identity, kind="local-user", verified=False, verified_by="local user name")


def _ci(facts: Facts | None) -> Any:
    from ps019.evidence import CiRun

    ci = facts.ci if facts else None
    if ci is None:
        return CiRun(provider="local")
    token = facts.decision.ci_identity if facts is not None and facts.decision is not None else None
    if token is not None and token.verified and not token.replay_problem:
        return CiRun(provider=ci.provider, run_url=ci.run_url, run_id=token.run_key, ref=ci.ref, commit=ci.commit,
                     workflow=token.workflow)
    return CiRun(provider=ci.provider, run_url=ci.run_url, ref=ci.ref, commit=ci.commit)


def _secret_values(views: Iterable[ResourceView]) -> set[str]:
    """Plaintext secrets the run saw: the record refuses to contain any of them."""
    out: set[str] = set()
    for view in views:
        for path in view.secret_paths:
            value: Any = view.props
            for key in path:
                try:
                    value = value[key]
                except (KeyError, IndexError, TypeError):
                    value = None
                    break
            _collect_strings(value, out)
    return out


def _collect_strings(value: Any, out: set[str]) -> None:
    """Every text under a secret path: a secret may be a whole map or list (e.g. a Lambda's environment variables
    marked secret as one value), whose entries a message can quote one by one."""
    if isinstance(value, str):
        if value:
            out.add(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect_strings(item, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_strings(item, out)


