"""Gate settings (the ``environments`` and ``gate`` sections of ``ps019-settings`` in the policy pack config) and
environment classification.

These settings come from the platform/security team's policy pack config, never from the stack: whoever can edit a
stack's config or tags must not be able to change who is trusted, what the rules are, or lower a stack's tier.
Keys may be written in snake_case or camelCase (``min_approvals`` or ``minApprovals``).

Classification (``classify_environment``), in precedence order:

1. stack tag ``ps019:environment``,
2. stack config ``ps019:environment``,
3. the pack's name patterns per tier (matched, case-insensitively, against ``org/project/stack`` and the short stack
   name, tiers tried from most to least sensitive),
4. otherwise ``unknown``, which the gate enforces with the rules of ``unknown_treated_as`` (production by default).

Why tags and config may only RAISE the tier: both are editable by anyone who can deploy the stack (config lives in
``Pulumi.<stack>.yaml`` in the repository; tags are set with ``pulumi stack tag set``). If they could lower the tier, a
developer could declassify production with one line and walk past the gate. So a declaration more sensitive than what
the patterns say is honoured (tag before config), a less sensitive one is ignored and the ignored declaration is named
in the tier source. A stack no pattern names stays ``unknown`` (enforced as production) unless a declaration raises it.
If only the platform team can set tags in your organisation (e.g. Pulumi Cloud tags managed by automation), list
``tag`` in ``trusted_declarations``: a trusted declaration then sets the tier in either direction.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import timedelta
from typing import Any, Literal, Mapping, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ps019.gate.ci_identity import OidcSettings
from ps019.gate.signing import TrustedKey
from ps019.gate.windows import ChangeWindows
from ps019.model import Severity

ENVIRONMENT_KEY = "ps019:environment"
UNKNOWN_TIER = "unknown"
CHANGE_CLASSES = ("standard", "normal", "emergency")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: Any) -> timedelta:
    """``90m``, ``24h``, ``7d``, ``2w``, a number of seconds, or a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    raise ValueError(f"invalid duration {value!r}: use a number with a unit, e.g. 90m, 24h, 7d")


# --- environments ---------------------------------------------------------------------------------------------------


class EnvironmentSettings(_Model):
    tiers: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "production": ["*/prod", "*-prod", "*/production", "*-production", "prod", "production", "*/prd", "prd"],
            "staging": ["*/staging", "*-staging", "*/stage", "*/stg", "staging", "stage"],
            "development": ["*/dev", "*-dev", "*/development", "*/test", "*/sandbox", "dev", "development", "test"],
        },
        description="tier name -> name patterns; listed from most to least sensitive (that order is the ranking)",
    )
    unknown_treated_as: str = Field("production", description="tier whose rules apply when no pattern matches")
    trusted_declarations: list[Literal["tag", "config"]] = Field(
        default_factory=list,
        description="declaration sources allowed to LOWER the tier (only if stack owners cannot set them)",
    )

    @model_validator(mode="after")
    def _known_tiers(self) -> "EnvironmentSettings":
        if not self.tiers:
            raise ValueError("tiers: at least one tier is required")
        if UNKNOWN_TIER in self.tiers:
            raise ValueError(f"tiers: {UNKNOWN_TIER!r} is reserved")
        if self.unknown_treated_as not in self.tiers:
            raise ValueError(f"unknown_treated_as: {self.unknown_treated_as!r} is not one of the tiers")
        return self

    def rank(self, tier: str) -> int:
        """Lower is more sensitive; ``unknown`` ranks as the tier it is treated as."""
        order = list(self.tiers)
        if tier == UNKNOWN_TIER:
            tier = self.unknown_treated_as
        return order.index(tier) if tier in order else len(order)

    def effective_tier(self, tier: str) -> str:
        return self.unknown_treated_as if tier == UNKNOWN_TIER else tier


class Classification(NamedTuple):
    tier: str
    source: str


def _match_pattern(stack_ref: str, short: str, settings: EnvironmentSettings) -> tuple[str, str] | None:
    for tier, patterns in settings.tiers.items():
        for pattern in patterns:
            p = pattern.casefold()
            if fnmatch.fnmatchcase(stack_ref.casefold(), p) or fnmatch.fnmatchcase(short.casefold(), p):
                return tier, pattern
    return None


def classify_environment(
    org: str,
    project: str,
    stack: str,
    stack_tags: Mapping[str, str] | None,
    stack_config: Mapping[str, str] | None,
    settings: EnvironmentSettings | None = None,
) -> Classification:
    """The stack's tier and a human-readable account of where it came from (see the module docstring)."""
    settings = settings or EnvironmentSettings()
    stack_ref = f"{org}/{project}/{stack}"
    short = stack.rsplit("/", 1)[-1]
    notes: list[str] = []

    declarations: list[tuple[str, str, str]] = []  # (kind, label, tier)
    for kind, label, source in (
        ("tag", f"stack tag {ENVIRONMENT_KEY}", stack_tags or {}),
        ("config", f"stack config {ENVIRONMENT_KEY}", stack_config or {}),
    ):
        raw = source.get(ENVIRONMENT_KEY)
        if raw is None:
            continue
        value = str(raw).strip().casefold()
        if value not in settings.tiers:
            notes.append(f"{label}={raw!r} ignored (not a known tier: {', '.join(settings.tiers)})")
            continue
        declarations.append((kind, label, value))

    trusted = [d for d in declarations if d[0] in settings.trusted_declarations]
    if trusted:
        kind, label, tier = trusted[0]
        tier_source = f"{label} (trusted declaration)"
    else:
        matched = _match_pattern(stack_ref, short, settings)
        if matched:
            tier, pattern = matched
            tier_source = f"pack pattern {pattern!r}"
        else:
            tier, tier_source = UNKNOWN_TIER, f"no pack pattern matches {stack_ref!r}"

    for kind, label, declared in declarations:
        if trusted and (kind, label, declared) == trusted[0]:
            continue
        if settings.rank(declared) < settings.rank(tier):
            notes.append(f"raised from {tier} ({tier_source}) by {label}")
            tier, tier_source = declared, label
        elif declared != tier:
            notes.append(f"{label}={declared!r} ignored (tags and config may only raise the tier)")
    if tier == UNKNOWN_TIER:
        notes.append(f"enforced with the {settings.unknown_treated_as} rules (safest applicable rule)")
    return Classification(tier, "; ".join([tier_source, *notes]))


# --- gate rules -----------------------------------------------------------------------------------------------------

EVIDENCE_FIELDS = ("test_evidence", "security_review", "rollback_plan", "monitoring_plan")


class ApprovalRule(_Model):
    """What a change of one class needs in one tier."""

    require_change_request: bool = True
    min_approvals: int = Field(1, ge=0)
    required_roles: list[str] = Field(default_factory=lambda: ["approver"])
    required_fields: list[Literal["test_evidence", "security_review", "rollback_plan", "monitoring_plan"]] = Field(
        default_factory=lambda: ["test_evidence", "rollback_plan", "monitoring_plan"]
    )
    require_runbook: bool = False
    require_approved_path: bool = True
    require_break_glass: bool = False
    single_use: bool = Field(False, description="a change request deploys a stack once: a second update under it is "
                                                "refused (checked in the evidence store)")


class TierRules(_Model):
    enforcement: Literal["mandatory", "advisory", "off"] = "mandatory"
    standard: ApprovalRule = ApprovalRule(min_approvals=1, required_roles=[], require_runbook=True,
                                          required_fields=["rollback_plan"])
    normal: ApprovalRule = ApprovalRule(min_approvals=2, required_roles=["approver"])
    emergency: ApprovalRule = ApprovalRule(require_change_request=False, min_approvals=0, required_roles=[], required_fields=[],
                                           require_approved_path=False, require_break_glass=True)
    change_windows: ChangeWindows | None = Field(
        None, description="when normal and standard changes may run (weekly windows, freezes; with time zones); "
                          "outside them only break-glass changes the tier")

    def for_class(self, change_class: str) -> ApprovalRule:
        return getattr(self, change_class)


def _default_rules() -> dict[str, TierRules]:
    relaxed = ApprovalRule(min_approvals=1, required_roles=[], required_fields=[], require_approved_path=False)
    return {
        "production": TierRules(),
        "staging": TierRules(enforcement="advisory", standard=relaxed, normal=relaxed,
                             emergency=relaxed.model_copy(update={"min_approvals": 0})),
        "development": TierRules(enforcement="advisory", standard=relaxed, normal=relaxed,
                                 emergency=relaxed.model_copy(update={"min_approvals": 0})),
    }


class EscalationSettings(_Model):
    """Findings at or above ``severity`` during the run need approvals with ``required_roles`` (PS-019 release gates:
    risks above the delegated threshold are escalated before production approval)."""

    severity: Severity = Severity.HIGH
    required_roles: list[str] = Field(default_factory=lambda: ["security"])
    tiers: list[str] = Field(default_factory=lambda: ["production"])


class SeparationOfDuties(_Model):
    """Who may not be whom. People are compared through ``gate.people`` / ``identityAliases`` and AWS session names
    (``ps019.gate.people``): one person with two keys or two names is still one person."""

    approver_not_author: bool = Field(True, description="an approval by the change's author does not count")
    approver_not_deployer: bool = Field(True, description="an approval by the deployer does not count")
    author_not_deployer: bool = Field(False, description="the author may not deploy their own change (a CI identity "
                                                         "deploys; locally the author is a direct change anyway)")
    author_signs: bool = Field(
        True, description="the author signs the request with their own trusted key (`ps019 approve FILE --role author "
                          "--identity <author> --key ...`) in every tier whose gate is mandatory (production, and "
                          "stacks enforced as production); advisory tiers are not asked. false relaxes it: the author "
                          "is then whatever the request says, and every record of a mandatory tier says so "
                          "(recording.relaxed)")


class ApprovedPath(_Model):
    """Where a production normal/standard change must run from. CI markers are environment variables anyone can set
    on a laptop, so they never satisfy the approved path on their own: configure at least one of
    ``gate.oidc.rules.<tier>`` (the CI job's OIDC ID token) or ``deploy_identity_patterns`` (the CI deploy role,
    verified with STS). Every configured mechanism must be satisfied."""

    deploy_identity_patterns: list[str] = Field(
        default_factory=list, description="ARN patterns of the STS-verified deploy identity (the CI role)")
    require_ci: bool = True
    ci_providers: list[str] = Field(default_factory=lambda: ["github", "gitlab", "buildkite", "circleci", "jenkins",
                                                             "azure-pipelines", "bitbucket", "generic"])
    protected_ref_patterns: list[str] = Field(default_factory=lambda: ["refs/heads/main", "refs/heads/master",
                                                                       "refs/tags/*"])
    require_protected_flag: bool = False
    verified_by: list[Literal["oidc", "sts", "ci", "local-user"]] = Field(
        default_factory=lambda: ["oidc", "sts"],
        description="how the deployer must have been established (oidc: a verified CI ID token; sts: the AWS caller)")


class GateSettings(_Model):
    ticket_pattern: str = r"^[A-Z][A-Z0-9]+-[0-9]+$"
    trusted_keys: list[TrustedKey] = Field(default_factory=list)
    rules: dict[str, TierRules] = Field(default_factory=_default_rules)
    escalation: EscalationSettings = EscalationSettings()
    separation_of_duties: SeparationOfDuties = SeparationOfDuties()
    approved_path: ApprovedPath = ApprovedPath()
    standard_runbooks: list[str] = Field(default_factory=list)
    max_approval_age: timedelta = timedelta(hours=72)
    max_change_request_lifetime: timedelta = timedelta(days=14)
    clock_skew: timedelta = timedelta(minutes=5)
    break_glass_verified_by: list[Literal["oidc", "sts", "ci", "local-user"]] = Field(
        default_factory=lambda: ["oidc", "sts"],
        description="how the deployer must be established for a break-glass grant to count (ci and local-user are "
                    "assertions anyone can make)",
    )
    oidc: OidcSettings = Field(default_factory=OidcSettings,
                               description="CI OIDC ID tokens: trusted issuers, token source, per-tier claim rules")
    identity_aliases: dict[str, list[str]] = Field(
        default_factory=dict,
        description="canonical identity -> other names of the same person (CI login, AWS session name)",
    )
    people: dict[str, list[str]] = Field(
        default_factory=dict,
        description="person -> their identities (e-mail, CI login, OIDC subject, AWS ARN; exact or fnmatch patterns). "
                    "When set, an approval counts only if its key's identity belongs to a listed person, and N-of-M "
                    "and separation of duties compare people")

    @field_validator("rules", mode="before")
    @classmethod
    def _merge_rules(cls, value: Any) -> Any:
        # Configuring one tier must not silently drop the defaults of the others.
        if isinstance(value, Mapping):
            return {**_default_rules(), **value}
        return value

    @field_validator("ticket_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("max_approval_age", "max_change_request_lifetime", "clock_skew", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _unique_keys(self) -> "GateSettings":
        seen: dict[str, str] = {}
        for key in self.trusted_keys:
            if key.key_id in seen and seen[key.key_id] != key.identity:
                raise ValueError(f"trusted_keys: key {key.key_id} is listed for {seen[key.key_id]} and {key.identity}")
            seen[key.key_id] = key.identity
        return self

    def rules_tier(self, tier: str, unknown_treated_as: str = "production") -> str:
        """The tier whose rules apply: ``unknown`` is treated as ``unknown_treated_as``; a tier without rules gets
        production's."""
        effective = unknown_treated_as if tier == UNKNOWN_TIER else tier
        return effective if effective in self.rules else "production"

    def oidc_required(self, tier: str, unknown_treated_as: str = "production") -> bool:
        """Whether the tier has CI OIDC claim rules (then environment variables never count for the CI facts)."""
        return bool(self.oidc.rules.get(self.rules_tier(tier, unknown_treated_as)))

    def rules_for(self, tier: str, unknown_treated_as: str = "production") -> TierRules:
        effective = unknown_treated_as if tier == UNKNOWN_TIER else tier
        if effective in self.rules:
            return self.rules[effective]
        # A tier with no rules gets the production rules: the safest applicable rule.
        return self.rules.get("production", TierRules())

    def trusted_index(self) -> dict[str, TrustedKey]:
        return {key.key_id: key for key in self.trusted_keys}
