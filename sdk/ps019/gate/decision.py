"""The gate decision: one pure function over the facts of a run, computed once per engine pass.

``decide_gate(inputs, settings)`` does no I/O and does not look at ``dry_run`` (it is only recorded), so preview and
update decide the same way. The gate controls (``ps019.controls.gate``) report ``decision.violations[CONTROL_ID]`` on
the root ``pulumi:pulumi:Stack`` resource; ``decision.evidence()`` is what the evidence record keeps: what was
presented, what was verified, and why anything failed.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from ps019.gate import change_request as cr_mod
from ps019.gate.change_request import ChangeRequest, ChangeRequestSource
from ps019.gate.ci import CiRun
from ps019.gate.people import People
from ps019.gate.plan import PlanError, parse_plan
from ps019.gate.settings import UNKNOWN_TIER, ApprovalRule, GateSettings
from ps019.gate.signing import verify
from ps019.model import Severity, Violation

CR_VALID = "PS019-GATE-001"
APPROVALS = "PS019-GATE-002"
SEPARATION = "PS019-GATE-003"
APPROVED_PATH = "PS019-GATE-004"
ESCALATION = "PS019-GATE-005"
RUNBOOK = "PS019-GATE-006"
EMERGENCY = "PS019-GATE-007"
WINDOW = "PS019-GATE-009"
ESCALATION_CONTROL = ESCALATION  # the name the pack adapter uses
GATE_CONTROL_IDS = (CR_VALID, APPROVALS, SEPARATION, APPROVED_PATH, ESCALATION, RUNBOOK, EMERGENCY, WINDOW)

_CLAUSE = {
    CR_VALID: "PS-019 §4 / release gates: release approval is tied to explicit evidence (ticket, change context, "
              "rollback and monitoring plans)",
    APPROVALS: "PS-019 §3 / release gates: production deployments retain approver evidence; no implied approval",
    SEPARATION: "PS-019 §3: changes require peer review (approver independent of author and deployer)",
    APPROVED_PATH: "PS-019 §1: no direct production changes outside documented break-glass; normal changes flow "
                   "through approved deployment mechanisms",
    ESCALATION: "release gates: known open risks above the delegated threshold are escalated before production approval",
    RUNBOOK: "PS-019 §2: a standard change is a pre-approved activity with a documented runbook",
    EMERGENCY: "PS-019 §1-2: emergency changes only under documented break-glass with follow-up review",
    WINDOW: "PS-019 §1-2: normal changes flow through approved mechanisms at approved times; outside them only "
            "documented break-glass",
}


@dataclass(frozen=True)
class Deployer:
    """Who runs this deployment and how that was established: ``oidc`` (the actor named by a verified CI OIDC ID
    token), ``sts`` (AWS caller identity), ``ci`` (the CI system's actor from environment variables: an assertion) or
    ``local-user`` (the OS user: an assertion). ``sts_arn`` is the STS-verified caller whenever there is one (the
    approved path's deploy-identity patterns are matched against it alone); ``names`` are other verified names of
    the same principal (a GitLab token's user_email, the STS ARN), compared in separation of duties."""

    identity: str | None
    verified_by: str | None = None
    sts_arn: str | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.verified_by == "sts" and self.sts_arn is None:
            object.__setattr__(self, "sts_arn", self.identity)

    def all_names(self) -> tuple[str, ...]:
        return tuple(n for n in dict.fromkeys((self.identity, *self.names, self.sts_arn)) if n)


@dataclass(frozen=True)
class GateInputs:
    stack_ref: str
    tier: str
    tier_source: str
    now: datetime
    dry_run: bool = False
    change_request: ChangeRequestSource | None = None
    deployer: Deployer = Deployer(None)
    ci: CiRun | None = None
    artifact_commit: str | None = None
    artifact_source: str = "unknown"
    artifact_problem: str | None = None
    plan_digest: str | None = None
    plan_problem: str | None = None
    plan_data: bytes | None = field(default=None, repr=False)  # the plan file (parsed when a request binds it)
    prior_uses: tuple[str, ...] = ()  # update records already deployed under this change request (evidence store)
    break_glass: Any = None  # GrantCheck (grant_id, valid, problems, operator, waived_controls, expires_at, notices)
    unknown_treated_as: str = "production"
    ci_identity: Any = None  # ps019.gate.ci_identity.CiIdentity: the verified CI OIDC ID token, or why there is none


class Anchor:
    """Where the run's gate decision is reported: the first resource the engine analyzes in the run (the root
    ``pulumi:pulumi:Stack`` under the real engine, but whatever comes first in an export or program without one), else
    AnalyzeStack (PS019-GATE-008). A production run therefore never proceeds without a gate decision."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.urn: str | None = None

    def claim(self, urn: str) -> bool:
        """True for the resource that carries the decision (the first one asked, and later asks for it again)."""
        with self._lock:
            if self.urn is None:
                self.urn = urn
            return self.urn == urn

    @property
    def claimed(self) -> bool:
        return self.urn is not None


@dataclass(frozen=True)
class GateDecision:
    stack_ref: str
    tier: str
    tier_source: str
    rules_tier: str
    enforcement: str  # mandatory | advisory | off
    change_class: str | None
    blocked: bool
    violations: Mapping[str, tuple[Violation, ...]]
    security_approved: bool
    approval_roles: frozenset
    presented: Mapping[str, Any]
    verified_approvals: tuple[Mapping[str, Any], ...]
    rejected_approvals: tuple[Mapping[str, Any], ...]
    notes: tuple[str, ...]
    deployer: Deployer
    ci: CiRun | None
    artifact_commit: str | None
    plan_digest: str | None
    break_glass_grant: str | None
    dry_run: bool = False
    tier_note: str = ""
    break_glass: Any = None  # the GrantCheck the decision saw (break-glass controls read ctx.gate.break_glass)
    escalation: Any = None  # the EscalationSettings in force (so escalation_violations needs no settings)
    ci_identity: Any = None
    relaxed: tuple[str, ...] = ()  # secure defaults this decision ran without, by explicit setting (recorded)
    # The approved plan (ps019.gate.plan.ApprovedPlan) the change request binds and this run presented; every
    # deployed resource must conform to it (PS019-GATE-020). None: no plan bound.
    bound_plan: Any = field(default=None, compare=False, repr=False)
    anchor: Anchor = field(default_factory=Anchor, compare=False, repr=False)

    @property
    def allowed(self) -> bool:
        return not self.blocked

    def approval_references(self) -> list[dict[str, Any]]:
        """Every presented approval in the evidence record's ``VerifiedReference`` shape."""
        cr = self.presented.get("change_request") or {}
        ticket = cr.get("ticket", "?")
        refs = []
        for entry in sorted([*self.verified_approvals, *self.rejected_approvals], key=lambda a: a["index"]):
            excluded = entry.get("excluded")
            failures = [entry["reason"]] if "reason" in entry else ([f"does not count: {excluded}"] if excluded else [])
            refs.append({
                "ref_id": f"{ticket}#approvals[{entry['index']}]",
                "kind": "approval",
                "presented": True,
                "verified": not failures,
                "failures": failures,
                "identity": entry.get("approver"),
                "role": entry.get("role"),
                "keyid": entry.get("key_id"),
                "expires_at": entry.get("expires_at"),
                "details": {"signed_at": entry.get("signed_at"), "signature_verified": "reason" not in entry},
            })
        return refs

    def evidence(self) -> dict[str, Any]:
        """Plain JSON for the evidence record (no secrets: only identities, key IDs, refs and reasons)."""
        cr = self.presented.get("change_request") or {}
        return {
            # The evidence record's own fields (ps019.evidence.record.Record):
            "change_request": cr.get("ticket"),
            "rollback_plan": cr.get("rollback_plan"),
            "monitoring_plan": cr.get("monitoring_plan"),
            "approvals": self.approval_references(),
            # The whole decision:
            "stack": self.stack_ref,
            "tier": self.tier,
            "tier_source": self.tier_source,
            "rules_tier": self.rules_tier,
            "enforcement": self.enforcement,
            "change_class": self.change_class,
            "decision": "blocked" if self.blocked else "allowed",
            "presented": dict(self.presented),
            "verified_approvals": [dict(a) for a in self.verified_approvals],
            "rejected_approvals": [dict(a) for a in self.rejected_approvals],
            "security_approved": self.security_approved,
            "deployer": {"identity": self.deployer.identity, "verified_by": self.deployer.verified_by,
                         "sts_arn": self.deployer.sts_arn, "names": list(self.deployer.names)},
            "ci_identity": self.ci_identity.evidence() if self.ci_identity is not None else None,
            "ci": self.ci.as_dict() if self.ci else None,
            "artifact": {"git_commit": self.artifact_commit, "plan_digest": self.plan_digest},
            "break_glass_grant": self.break_glass_grant,
            "violations": {cid: [v.message for v in vs] for cid, vs in self.violations.items() if vs},
            "notes": list(self.notes),
            "relaxed": list(self.relaxed),
        }


# --- identities -----------------------------------------------------------------------------------------------------


def _people(aliases: Any) -> People:
    return aliases if isinstance(aliases, People) else People(None, aliases)


def canonical_person(identity: str, aliases: Any = None) -> str:
    """One stable name per person (``ps019.gate.people``); ``aliases``: a ``People`` or an identityAliases map."""
    return _people(aliases).person(identity) or ""


def same_person(a: str | None, b: str | None, aliases: Any = None) -> bool:
    return _people(aliases).same(a, b)


# --- the decision ---------------------------------------------------------------------------------------------------


class _Collector:
    def __init__(self, advisory: bool, tier_note: str) -> None:
        self.advisory = advisory
        self.tier_note = tier_note
        self.items: dict[str, list[Violation]] = {cid: [] for cid in GATE_CONTROL_IDS}

    def add(self, control_id: str, what: str, fix: str, *, advisory: bool = False) -> None:
        message = f"{what}{self.tier_note}. Fix: {fix} [{_CLAUSE[control_id]}]"
        details = {"advisory": True} if (self.advisory or advisory) else {}
        self.items[control_id].append(Violation(message, details=details))

    def blocking(self) -> bool:
        return any(not v.details.get("advisory") for vs in self.items.values() for v in vs)

    def frozen(self) -> dict[str, tuple[Violation, ...]]:
        return {cid: tuple(vs) for cid, vs in self.items.items()}


def _fmt_time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def check_approved_path(inputs: GateInputs, settings: GateSettings,
                        rules_tier: str = "production") -> tuple[list[str], list[str]]:
    """(problems, notes) for the approved deployment path. Environment variables never satisfy it on their own: at
    least one deploy-identity mechanism is configured (OIDC claim rules for the tier, STS role patterns) and every
    configured one is satisfied."""
    path = settings.approved_path
    problems: list[str] = []
    notes: list[str] = []
    oidc_rules = settings.oidc.rules.get(rules_tier) or []
    if not oidc_rules and not path.deploy_identity_patterns:
        problems.append(f"no deploy identity is configured for the {rules_tier} approved path, and environment "
                        f"variables (CI=true, GITHUB_ACTOR, ...) never satisfy it: configure "
                        f"gate.oidc.rules.{rules_tier} (claim rules for the CI job's OIDC ID token) or "
                        "gate.approvedPath.deployIdentityPatterns (the CI deploy role's ARN, verified with STS)")
    if oidc_rules:
        from ps019.gate.ci_identity import rule_problems

        problems.extend(rule_problems(inputs.ci_identity, oidc_rules))
    ci = inputs.ci
    if path.require_ci:
        if ci is None:
            problems.append("not running in CI")
        else:
            if ci.provider not in path.ci_providers:
                problems.append(f"CI provider {ci.provider!r} is not one of {path.ci_providers}")
            if not ci.ref or not any(fnmatch.fnmatchcase(ci.ref, p) for p in path.protected_ref_patterns):
                problems.append(f"ref {ci.ref or '(none)'} is not a protected ref {path.protected_ref_patterns}")
            if path.require_protected_flag and ci.protected is not True:
                problems.append(f"{ci.provider} does not report the ref as protected")
    deployer = inputs.deployer
    if deployer.verified_by not in path.verified_by:
        problems.append(f"deployer identity {deployer.identity or '(unknown)'} was established by "
                        f"{deployer.verified_by or 'nothing'}; the approved path needs one of {path.verified_by}")
    if path.deploy_identity_patterns:
        # Only an STS-verified caller can match: a CI actor named like the role's ARN is still an env variable.
        arn = deployer.sts_arn
        if not arn or not any(fnmatch.fnmatchcase(arn, p) for p in path.deploy_identity_patterns):
            problems.append(f"the STS-verified caller {arn or '(none: STS did not verify one)'} does not match the "
                            f"approved deploy identities {path.deploy_identity_patterns}")
    return problems, notes


def _grant_summary(grant: Any) -> tuple[bool, str | None, str]:
    if grant is None:
        return False, None, "no break-glass grant"
    grant_id = getattr(grant, "grant_id", None)
    if getattr(grant, "valid", False):
        return True, grant_id, f"break-glass grant {grant_id}"
    problems = "; ".join(getattr(grant, "problems", ()) or ()) or "invalid"
    if grant_id is None:
        return False, None, f"no valid break-glass grant ({problems})"
    return False, grant_id, f"break-glass grant {grant_id} is not valid ({problems})"


def decide_gate(inputs: GateInputs, settings: GateSettings) -> GateDecision:
    tier = inputs.tier
    rules_tier = settings.rules_tier(tier, inputs.unknown_treated_as)
    tier_rules = settings.rules_for(rules_tier)
    tier_note = (f" (stack tier unknown: {inputs.tier_source}; enforced with the {rules_tier} rules, the safest "
                 "applicable rule)") if tier == UNKNOWN_TIER else ""
    out = _Collector(advisory=tier_rules.enforcement == "advisory", tier_note=tier_note)
    notes: list[str] = []
    if tier_rules.enforcement == "advisory":
        notes.append(f"{rules_tier}: gate findings are advisory")
    grant_valid, grant_id, grant_text = _grant_summary(inputs.break_glass)
    if grant_valid and inputs.deployer.verified_by not in settings.break_glass_verified_by:
        # Defence in depth: a grant is bound to the operator's identity, so that identity must be established
        # more strongly than a name anyone can put in $USER.
        grant_valid = False
        grant_text = (f"break-glass grant {grant_id} cannot be used: the deployer {inputs.deployer.identity} was "
                      f"established by {inputs.deployer.verified_by or 'nothing'}, and a grant needs one of "
                      f"{settings.break_glass_verified_by}")
    if inputs.break_glass is not None:
        notes.extend(getattr(inputs.break_glass, "notices", ()) or ())

    presented: dict[str, Any] = {"change_request": None, "source": None}
    source = inputs.change_request
    request: ChangeRequest | None = None
    cr_problems: list[str] = []
    if source is not None and source.presented:
        presented["source"] = {"origin": source.origin, "path": source.path}
        if source.error:
            cr_problems.append(f"change request {source.error}")
        else:
            request, problems = cr_mod.parse_change_request(source.data or b"")
            if request is None:
                cr_problems.append(f"change request {source.path} is invalid: " + "; ".join(problems))
    if request is not None:
        presented["change_request"] = {
            "ticket": request.ticket, "change_class": request.change_class, "summary": request.summary,
            "owner": request.owner, "author": request.author, "stacks": list(request.stacks),
            "artifact": request.artifact.model_dump(mode="json"), "runbook_id": request.runbook_id,
            "test_evidence": request.test_evidence, "security_review": request.security_review,
            "rollback_plan": request.rollback_plan, "monitoring_plan": request.monitoring_plan,
            "expires_at": _fmt_time(request.expires_at), "approvals_presented": len(request.approvals),
            "digest": cr_mod.request_digest(request),
        }

    if tier_rules.enforcement == "off":
        return _finish(inputs, settings, rules_tier, tier_rules.enforcement, request.change_class if request else None,
                       out, [], [], presented, notes + [f"{rules_tier}: gate is off"], grant_id, tier_note)

    # Approved path first: it decides whether this is a direct change (which only break-glass can carry).
    path_problems, path_notes = check_approved_path(inputs, settings, rules_tier)
    notes.extend(path_notes)
    direct = bool(path_problems)

    change_class = request.change_class if request else None
    if grant_valid and (request is None or direct or change_class == "emergency"):
        if change_class and change_class != "emergency":
            notes.append(f"change class {change_class} becomes emergency: direct change under {grant_text}")
        change_class = "emergency"
    rule: ApprovalRule = tier_rules.for_class(change_class or "normal")

    # GATE-007: emergency only under a valid grant.
    if change_class == "emergency" and rule.require_break_glass and not grant_valid:
        out.add(EMERGENCY, f"change request declares an emergency change but there is {grant_text}",
                "open a grant with `ps019 break-glass open --stack " + inputs.stack_ref + " --reason ... "
                "--incident ...`, or present a normal change with approvals")

    # GATE-004: approved deployment path.
    if direct and rule.require_approved_path:
        extra = f"; {grant_text}" if inputs.break_glass is not None else ""
        out.add(APPROVED_PATH, f"direct change to {inputs.stack_ref}: not from the approved deployment path ("
                + "; ".join(path_problems) + extra + ")",
                "deploy from the CI pipeline on a protected branch under the deploy identity, or, in an "
                "emergency, open a break-glass grant (`ps019 break-glass open`)")

    # GATE-001: the change request itself.
    cr_required = rule.require_change_request and not (change_class == "emergency" and grant_valid)
    if request is None and not cr_problems:
        if cr_required:
            out.add(CR_VALID, f"no change request presented for {inputs.stack_ref} (neither {cr_mod.ENV_VAR} nor "
                              f"stack config {cr_mod.CONFIG_KEY} is set)",
                    f"create one with `ps019 change-request new`, get it approved with `ps019 approve`, and set "
                    f"{cr_mod.ENV_VAR}=/abs/path/change.json in the deploy step")
    for problem in cr_problems:
        out.add(CR_VALID, problem, "fix the file (`ps019 change-request validate FILE` shows every problem)",
                advisory=not cr_required)

    binding_problems: list[str] = []
    bound_plan = None
    if request is not None:
        content = cr_mod.content_problems(request, settings.ticket_pattern)
        if inputs.stack_ref not in request.stacks:
            binding_problems.append(f"it covers stacks {request.stacks}, not {inputs.stack_ref}")
        if inputs.artifact_problem:
            binding_problems.append(inputs.artifact_problem)
        elif inputs.artifact_commit is None:
            binding_problems.append("the commit this run deploys is unknown (set PS019_GIT_COMMIT or run in CI)")
        elif inputs.artifact_commit != request.artifact.git_commit:
            binding_problems.append(f"it approves commit {request.artifact.git_commit}, but this run deploys "
                                    f"{inputs.artifact_commit} ({inputs.artifact_source})")
        if request.artifact.plan_digest:
            if inputs.plan_problem:
                binding_problems.append(inputs.plan_problem)
            elif inputs.plan_digest is None:
                binding_problems.append(f"it approves plan {request.artifact.plan_digest}, but no plan file was "
                                        "given (set PS019_PLAN_FILE to the `pulumi preview --save-plan` file)")
            elif inputs.plan_digest != request.artifact.plan_digest:
                binding_problems.append(f"it approves plan {request.artifact.plan_digest}, but this run's plan is "
                                        f"{inputs.plan_digest}")
            else:
                try:
                    bound_plan = parse_plan(inputs.plan_data or b"", inputs.plan_digest)
                except PlanError as exc:
                    binding_problems.append(f"the approved plan file {inputs.plan_digest} is not a usable Pulumi "
                                            f"plan: {exc}")
                else:
                    presented["plan"] = bound_plan.summary()
        if inputs.now > request.expires_at:
            content.append(f"expired at {_fmt_time(request.expires_at)}")
        if rule.single_use and inputs.prior_uses:
            content.append(f"it was already deployed to {inputs.stack_ref} by update record(s) "
                           f"{', '.join(inputs.prior_uses)}, and a {change_class} change request is single-use here "
                           "(gate.rules.<tier>.<class>.singleUse)")
        if request.created_at and request.created_at > inputs.now + settings.clock_skew:
            # The lifetime runs from created_at, and single use looks back from there: a request "created" in the
            # future would live longer than the maximum and hide the updates made under it before that date.
            content.append(f"created_at {_fmt_time(request.created_at)} is in the future (now {_fmt_time(inputs.now)}); "
                           "a change request's lifetime starts when it is written")
        lifetime_start = request.created_at or inputs.now
        if request.expires_at - lifetime_start > settings.max_change_request_lifetime:
            content.append(f"expires_at {_fmt_time(request.expires_at)} is more than "
                           f"{settings.max_change_request_lifetime} after {'created_at' if request.created_at else 'now'}")
        for name in rule.required_fields:
            if not getattr(request, name):
                content.append(f"{name}: required for a {change_class} change in {rules_tier}")
        for problem in content + binding_problems:
            out.add(CR_VALID, f"change request {request.ticket}: {problem}",
                    "correct the change request and have it approved again (any edit invalidates the signatures)",
                    advisory=not cr_required)

    # GATE-002 / GATE-003: approvals.
    people = People.of(settings)
    verified, rejected = _verify_approvals(request, inputs, settings, binding_problems, people)
    counted = [a for a in verified if not a.get("excluded") and a["role"] != "author"]
    roles = frozenset(a["role"] for a in counted)
    approvers = {a["person"] for a in counted}
    sod = settings.separation_of_duties
    relaxed: list[str] = []
    # The author is verified by their own signature wherever the gate is mandatory, except for an emergency carried
    # by a valid break-glass grant (no approvals are counted then, so there is no author to keep apart from them).
    author_checked = (request is not None and tier_rules.enforcement == "mandatory"
                      and not (change_class == "emergency" and grant_valid))
    author_signature = next((a for a in verified if a["role"] == "author" and not a.get("excluded")), None)
    author_signed = author_signature is not None
    if presented.get("change_request") is not None:
        presented["change_request"]["author_verified"] = (
            {"by": "signature", "key_id": author_signature["key_id"], "identity": author_signature["identity"]}
            if author_signature else None)
    if author_checked and not sod.author_signs:
        relaxed.append(f"gate.separationOfDuties.authorSigns=false: the author {request.author} of "
                       f"{request.ticket} is self-declared (not verified by their signature)")
        notes.append(relaxed[-1])
    elif author_checked and not author_signed:
        out.add(SEPARATION, f"the author {request.author} did not sign change request {request.ticket}: an author "
                            "named only in the request's text could be anyone, and could approve their own change "
                            "(gate.separationOfDuties.authorSigns)",
                f"the author signs it with their own trusted key: `ps019 approve FILE --role author --identity "
                f"{request.author} --key <author's key> --policy-pack-config <pack config>` (any key in "
                "gate.trustedKeys whose identity is the author may sign as the author)")
    for a in verified:
        if a.get("excluded"):
            out.add(SEPARATION, f"approval by {a['approver']} ({a['role']}) does not count: {a['excluded']}",
                    "an approval must come from someone other than the author and the deployer")
    # No parsable change request: GATE-001 already blocks and there is nothing to count.
    needs_approvals = request is not None
    if needs_approvals and not (change_class == "emergency" and grant_valid):
        shortfall = []
        if len(approvers) < rule.min_approvals:
            shortfall.append(f"{rule.min_approvals} valid approval(s) required for a {change_class or 'normal'} "
                             f"change in {rules_tier}, {len(approvers)} verified"
                             + (f" ({', '.join(sorted(approvers))})" if approvers else ""))
        missing_roles = [r for r in rule.required_roles if r not in roles]
        if missing_roles:
            shortfall.append(f"missing required role(s): {', '.join(missing_roles)}")
        rejected_text = "; ".join(f"approvals[{r['index']}] {r['approver']} ({r['role']}): {r['reason']}"
                                  for r in rejected)
        if shortfall:
            out.add(APPROVALS, "; ".join(shortfall) + (f"; rejected: {rejected_text}" if rejected else ""),
                    "collect signed approvals with `ps019 approve FILE --key KEY --identity ... --role ...` from "
                    "trusted approvers (gate.trusted_keys)")
        elif rejected:
            out.add(APPROVALS, f"approvals that did not verify (quorum met without them): {rejected_text}",
                    "remove or renew these approvals", advisory=True)

    if request is not None and settings.separation_of_duties.author_not_deployer and any(
        people.same(request.author, name) for name in inputs.deployer.all_names()
    ):
        out.add(SEPARATION, f"the author {request.author} is also the deployer {inputs.deployer.identity}",
                "deploy through the pipeline identity, not as the author")
    unknown = _unknown_deployer(inputs.deployer, settings, people)
    if request is not None and unknown:
        out.add(SEPARATION, unknown, f"add {inputs.deployer.identity} to gate.people under the person it is (a CI "
                                     "login, a bot that merges, the deploy role's session ARN pattern)")

    # GATE-009: change windows and freezes hold normal and standard changes; an emergency goes through break-glass.
    from ps019.gate.windows import window_problem

    held = window_problem(tier_rules.change_windows, inputs.now)
    if held and change_class != "emergency":
        out.add(WINDOW, f"{held}: a {change_class or 'normal'} change to {inputs.stack_ref} must wait",
                "deploy inside the window, or, for an emergency, open a break-glass grant (`ps019 break-glass open`)")

    # GATE-006: standard changes reference a pre-approved runbook.
    if request is not None and change_class == "standard" and rule.require_runbook:
        if not request.runbook_id:
            out.add(RUNBOOK, f"standard change {request.ticket} has no runbook_id",
                    f"reference one of the pre-approved runbooks {settings.standard_runbooks} or use change_class "
                    "normal")
        elif request.runbook_id not in settings.standard_runbooks:
            out.add(RUNBOOK, f"runbook {request.runbook_id!r} of standard change {request.ticket} is not a "
                             f"pre-approved runbook (configured: {settings.standard_runbooks or 'none'})",
                    "use a runbook listed in gate.standard_runbooks, or present it as a normal change")

    return _finish(inputs, settings, rules_tier, tier_rules.enforcement, change_class, out, verified, rejected,
                   presented, notes, grant_id if grant_valid else None, tier_note, roles, relaxed, bound_plan)


def _unknown_deployer(deployer: Deployer, settings: GateSettings, people: People) -> str | None:
    """With a people directory, a deployer it does not know cannot be compared with the approvers and the author: a
    CI login missing from ``gate.people`` would otherwise be a stranger to its owner's e-mail key."""
    sod = settings.separation_of_duties
    if not settings.people or not (sod.approver_not_deployer or sod.author_not_deployer) or not deployer.identity:
        return None
    if any(people.listed(name) for name in (deployer.identity, *deployer.names)):
        return None
    return (f"the deployer {deployer.identity} (established by {deployer.verified_by or 'nothing'}) is not a person in "
            "gate.people, so it cannot be told apart from the approvers and the author (one person, one approver)")


def _verify_approvals(request: ChangeRequest | None, inputs: GateInputs, settings: GateSettings,
                      binding_problems: list[str], people: People | None = None) -> tuple[list[dict], list[dict]]:
    verified: list[dict] = []
    rejected: list[dict] = []
    if request is None:
        return verified, rejected
    trusted = settings.trusted_index()
    sod = settings.separation_of_duties
    people = people or People.of(settings)
    seen: set[tuple[str, str]] = set()
    for index, approval in enumerate(request.approvals):
        base = {"index": index, "approver": approval.approver, "role": approval.role, "key_id": approval.key_id,
                "signed_at": _fmt_time(approval.signed_at), "expires_at": _fmt_time(approval.expires_at)}

        def reject(reason: str) -> None:
            rejected.append({**base, "reason": reason})

        key = trusted.get(approval.key_id)
        if key is None:
            reject(f"signed by key {approval.key_id}, which is not in gate.trusted_keys (untrusted key)")
            continue
        if not people.same(key.identity, approval.approver):
            reject(f"key {approval.key_id} belongs to {key.identity}, not {approval.approver}")
            continue
        if settings.people and not people.listed(key.identity):
            reject(f"key {approval.key_id} belongs to {key.identity}, who is not a person in gate.people")
            continue
        if approval.role not in key.roles and approval.role != "author":  # anyone may sign as the author
            reject(f"key {approval.key_id} may sign as {list(key.roles)}, not {approval.role!r}")
            continue
        result = verify(cr_mod.payload_for(request, approval), approval.signature, approval.key_id, trusted,
                        purpose=cr_mod.APPROVAL_PURPOSE)
        if not result.ok:
            reject("signature does not verify over this change request (it was signed over different content: "
                   "another ticket, stack, commit, plan or text, or the request was edited after approval)")
            continue
        if binding_problems:
            reject("the approved change request is not for this run: " + "; ".join(binding_problems))
            continue
        if approval.signed_at > inputs.now + settings.clock_skew:
            reject(f"signed_at {_fmt_time(approval.signed_at)} is in the future")
            continue
        if approval.expires_at is not None and inputs.now > approval.expires_at:
            reject(f"approval expired at {_fmt_time(approval.expires_at)}")
            continue
        if inputs.now - approval.signed_at > settings.max_approval_age:
            reject(f"approval signed at {_fmt_time(approval.signed_at)} is older than the maximum approval age "
                   f"{settings.max_approval_age}")
            continue
        # Count people, not spellings: the person is the trusted key's identity (through aliases), so one key
        # signing as "alice", "asmith" and "arn:...:assumed-role/x/alice" is still one approver.
        person = people.person(key.identity)
        if (person, approval.role) in seen:
            reject(f"duplicate approval: {key.identity} already approved as {approval.role} (one person counts once)")
            continue
        seen.add((person, approval.role))
        entry = {**base, "identity": key.identity, "person": person}
        if approval.role == "author":
            if not people.same(key.identity, request.author):
                entry["excluded"] = f"signed as the author, but {key.identity} is not the author {request.author}"
        elif sod.approver_not_author and people.same(key.identity, request.author):
            entry["excluded"] = f"the approver is the change author ({request.author})"
        elif sod.approver_not_deployer and any(people.same(key.identity, name)
                                               for name in inputs.deployer.all_names()):
            entry["excluded"] = f"the approver is the deployer ({inputs.deployer.identity})"
        verified.append(entry)
    return verified, rejected


def _finish(inputs: GateInputs, settings: GateSettings, rules_tier: str, enforcement: str, change_class: str | None,
            out: _Collector, verified: list, rejected: list, presented: dict, notes: list, grant_id: str | None,
            tier_note: str, roles: frozenset = frozenset(), relaxed: list | None = None,
            bound_plan: Any = None) -> GateDecision:
    security_roles = set(settings.escalation.required_roles)
    return GateDecision(
        stack_ref=inputs.stack_ref,
        tier=inputs.tier,
        tier_source=inputs.tier_source,
        rules_tier=rules_tier,
        enforcement=enforcement,
        change_class=change_class,
        blocked=out.blocking(),
        violations=out.frozen(),
        security_approved=bool(security_roles) and security_roles <= set(roles),
        approval_roles=frozenset(roles),
        presented=presented,
        verified_approvals=tuple(verified),
        rejected_approvals=tuple(rejected),
        notes=tuple(notes),
        deployer=inputs.deployer,
        ci=inputs.ci,
        artifact_commit=inputs.artifact_commit,
        plan_digest=inputs.plan_digest,
        break_glass_grant=grant_id,
        dry_run=inputs.dry_run,
        tier_note=tier_note,
        break_glass=inputs.break_glass,
        escalation=settings.escalation,
        ci_identity=inputs.ci_identity,
        relaxed=tuple(relaxed or ()),
        bound_plan=bound_plan,
    )


def escalation_violations(decision: GateDecision | None, findings_severities: Iterable[Any],
                          settings: GateSettings | None = None, *,
                          sources: Sequence[str] | None = None) -> list[Violation]:
    """The escalation rule (GATE-005): findings at or above the threshold need an approval in the security role(s).

    The adapter calls this with the severities of the findings seen during the run (excluding the gate's own), and
    ``sources``, the control ID of each, which the message names."""
    if decision is None or decision.enforcement == "off":
        return []
    esc = settings.escalation if settings is not None else decision.escalation
    if esc is None:
        return []
    if decision.rules_tier not in esc.tiers:
        return []
    threshold = Severity(esc.severity)
    severities = [Severity(s) for s in findings_severities]
    names = list(sources) if sources is not None and len(sources) == len(severities) else [""] * len(severities)
    above = [(s, n) for s, n in zip(severities, names) if s.rank >= threshold.rank]
    if not above or decision.security_approved:
        return []
    worst = max((s for s, _ in above), key=lambda s: s.rank)
    named = sorted({n for _, n in above if n})
    which = f": {', '.join(named)}" if named else ""
    message = (f"{len(above)} finding(s) at or above {threshold.value} severity (worst: {worst.value}{which}) in "
               f"{decision.stack_ref} without a verified approval in role(s) {esc.required_roles}{decision.tier_note}. "
               f"Fix: remediate the findings, or have a security approver review them and sign the change request "
               f"(`ps019 approve FILE --role {esc.required_roles[0] if esc.required_roles else 'security'}`), or "
               f"record an approved exception [{_CLAUSE[ESCALATION]}]")
    details = {"advisory": True} if decision.enforcement == "advisory" else {}
    return [Violation(message, details=details)]
