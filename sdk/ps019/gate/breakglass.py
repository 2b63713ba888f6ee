"""Break-glass: an audited, scoped, expiring override of the production change gate.

A **grant** is a document signed by the operator's Ed25519 key (``ps019.gate.signing``, purpose
``ps019/break-glass-grant/v1``) that binds together:

* the operator's *verified* identity (the STS caller ARN when AWS credentials are present, else the CI identity --
  see ``ps019.cli.operator_identity.resolve_operator_identity``); the signing key must be a trusted key with role ``operator`` whose
  ``identity`` matches that verified identity;
* one stack (``ORG/PROJECT/STACK``);
* a reason and an incident ID;
* an expiry (``issued_at + ttl``, capped by ``BreakGlassSettings.max_ttl_hours``);
* the exact control IDs it waives (never "all": only named, existing, waivable controls).

The grant is appended to the evidence store as a ``break_glass_open`` governance record (the signed document sits in
``payload.details["signed"]``; the typed payload fields mirror it for queries). ``close`` and ``review`` are signed
records too. :func:`check_break_glass` is the pure function the gate calls: it reads the governance records of the
stack and answers whether the deploying identity holds a usable grant, and if not, precisely why not.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar, Iterable, Mapping, Sequence

import structlog
from pydantic import (
    AfterValidator,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from ps019.errors import InputError
from ps019.gate import signing
from ps019.gate.people import People

log = structlog.get_logger(__name__)

PURPOSE_GRANT = signing.PURPOSE_BREAK_GLASS
PURPOSE_CLOSE = "ps019/break-glass-close/v1"
PURPOSE_REVIEW = "ps019/break-glass-review/v1"

GRANT_ID_PATTERN = r"^BG-\d{8}-[0-9a-f]{12}$"
STACK_REF_PATTERN = r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$"
CONTROL_ID_PATTERN = r"^PS019-[A-Z]+-\d{3}$"

KIND_OPEN = "break_glass_open"
KIND_CLOSE = "break_glass_close"
KIND_REVIEW = "break_glass_review"
BREAK_GLASS_KINDS = (KIND_OPEN, KIND_CLOSE, KIND_REVIEW)


# --- settings -------------------------------------------------------------------------------------------------------


class BreakGlassSettings(BaseModel):
    """The ``breakGlass`` section of ``ps019-settings`` (camelCase or snake_case keys)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=to_camel),
    )

    max_ttl_hours: float = Field(4.0, gt=0, le=168, description="longest lifetime a grant may have")
    review_sla_hours: float = Field(
        72.0, gt=0, description="hours after a grant ends (closed or expired) within which a review is due")
    block_on_overdue_review: bool = Field(
        True, description="refuse a new grant for a stack while an earlier grant's review is overdue")
    non_waivable_controls: tuple[str, ...] = Field(
        ("PS019-EVID-*", "PS019-EVIDENCE-*", "PS019-GATE-05?"),
        description="control IDs (fnmatch patterns) no grant may waive; evidence and break-glass reporting by default")
    operator_roles: tuple[str, ...] = Field(("operator",), description="trusted-key roles that may open a grant")
    reviewer_roles: tuple[str, ...] = Field(
        ("reviewer", "security", "approver"), description="trusted-key roles that may record a review")
    closer_roles: tuple[str, ...] = Field(
        ("security",), description="roles that may close someone else's grant (the operator may always close)")
    clock_skew_seconds: int = Field(300, ge=0, le=3600, description="tolerance for issued_at in the future")
    review_before_next_grant: bool = Field(
        True, description="an operator's next grant for a stack needs a review (by someone else) of her earlier grants "
                          "there: maxTtlHours bounds her emergency access, not just one grant")

    def is_waivable(self, control_id: str) -> bool:
        return not any(fnmatch.fnmatchcase(control_id, pattern) for pattern in self.non_waivable_controls)


# --- signed documents -----------------------------------------------------------------------------------------------


def _utc_seconds(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(timezone.utc).replace(microsecond=0)


def _z(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Whole seconds in UTC, serialised in one fixed form: signatures cover this exact text, so it must not depend on
# how a library chooses to print a datetime.
UtcSeconds = Annotated[datetime, AfterValidator(_utc_seconds), PlainSerializer(_z, return_type=str, when_used="json")]


class _Signed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    PURPOSE: ClassVar[str] = ""

    key_id: str
    signature: str = ""

    def body(self) -> dict[str, Any]:
        """What the signature covers: every field except the signature itself."""
        return self.model_dump(mode="json", exclude={"signature"})

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def verify(self, trusted: Any) -> signing.Verification:
        return signing.verify(self.body(), self.signature, self.key_id, trusted, purpose=self.PURPOSE)


class BreakGlassGrant(_Signed):
    PURPOSE: ClassVar[str] = PURPOSE_GRANT

    grant_id: str = Field(pattern=GRANT_ID_PATTERN)
    stack: str = Field(pattern=STACK_REF_PATTERN)
    operator: str = Field(min_length=1)
    identity_source: str = Field(min_length=1, description="aws-sts | ci-env")
    reason: str = Field(min_length=1)
    incident: str = Field(min_length=1)
    waived_controls: tuple[str, ...] = ()
    issued_at: UtcSeconds
    expires_at: UtcSeconds


    @field_validator("waived_controls")
    @classmethod
    def _exact_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for control_id in value:
            if not re.match(CONTROL_ID_PATTERN, control_id):
                raise ValueError(f"{control_id!r} is not a control ID (wildcards and 'all' are not allowed)")
        return tuple(sorted(set(value)))


class BreakGlassClose(_Signed):
    PURPOSE: ClassVar[str] = PURPOSE_CLOSE

    grant_id: str = Field(pattern=GRANT_ID_PATTERN)
    stack: str = Field(pattern=STACK_REF_PATTERN)
    closed_by: str = Field(min_length=1)
    closed_at: UtcSeconds
    notes: str = ""



class BreakGlassReview(_Signed):
    PURPOSE: ClassVar[str] = PURPOSE_REVIEW

    grant_id: str = Field(pattern=GRANT_ID_PATTERN)
    stack: str = Field(pattern=STACK_REF_PATTERN)
    reviewer: str = Field(min_length=1)
    reviewed_at: UtcSeconds
    notes: str = Field(min_length=1)
    links: tuple[str, ...] = ()



def new_grant_id(now: datetime) -> str:
    return f"BG-{now.astimezone(timezone.utc):%Y%m%d}-{secrets.token_hex(6)}"


def sign_document(doc: _Signed, private_key: Any) -> _Signed:
    """Return ``doc`` with ``key_id`` and ``signature`` set by ``private_key``."""
    unsigned = doc.model_copy(update={"key_id": signing.key_id(private_key), "signature": ""})
    sig = signing.sign(unsigned.body(), private_key, purpose=unsigned.PURPOSE)
    return unsigned.model_copy(update={"signature": sig.value})


# --- durations and identities ---------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1.5h``, ``1d``."""
    match = _DURATION.match(text or "")
    if not match:
        raise InputError(f"duration {text!r} is not of the form <number><s|m|h|d>, e.g. 2h or 90m")
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds <= 0:
        raise InputError(f"duration {text!r} must be positive")
    return timedelta(seconds=seconds)


def identity_matches(trusted_identity: str, verified_identity: str) -> bool:
    """A trusted key's ``identity`` names whom it belongs to: an exact identity, or an fnmatch pattern (``*``) such as
    ``arn:aws:sts::123456789012:assumed-role/BreakGlass/*`` when one role's sessions share a key holder."""
    if not trusted_identity or not verified_identity:
        return False
    if any(ch in trusted_identity for ch in "*?["):
        return fnmatch.fnmatchcase(verified_identity, trusted_identity)
    return trusted_identity == verified_identity


def trusted_keys_of(gate_settings: Any) -> dict[str, signing.TrustedKey]:
    """key id -> TrustedKey from ``GateSettings.trusted_keys`` (models or plain dicts); unreadable entries are
    skipped (the gate settings validation reports them)."""
    entries = getattr(gate_settings, "trusted_keys", None)
    if entries is None and isinstance(gate_settings, Mapping):
        entries = gate_settings.get("trusted_keys") or gate_settings.get("trustedKeys")
    out: dict[str, signing.TrustedKey] = {}
    for entry in entries or ():
        try:
            key = entry if isinstance(entry, signing.TrustedKey) else signing.TrustedKey.model_validate(
                entry.model_dump() if isinstance(entry, BaseModel) else entry)
            out[key.key_id] = key
        except (ValidationError, ValueError, TypeError):
            continue
    return out


@dataclass(frozen=True)
class VerifiedIdentity:
    id: str
    source: str  # aws-sts | ci-env
    verified_by: str
    account: str | None = None


# --- reading governance records -------------------------------------------------------------------------------------


def _kind(record: Any) -> str:
    kind = record.get("kind") if isinstance(record, Mapping) else getattr(record, "kind", None)
    return getattr(kind, "value", kind) or ""


def _payload(record: Any) -> Any:
    return record.get("payload") if isinstance(record, Mapping) else getattr(record, "payload", None)


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _record_stack(record: Any) -> str:
    parts = [_attr(record, k, "") or "" for k in ("organization", "project", "stack")]
    return "/".join(parts) if parts[2] else ""


def signed_document(record: Any) -> Mapping[str, Any] | None:
    details = _attr(_payload(record), "details") or {}
    signed = details.get("signed") if isinstance(details, Mapping) else None
    return signed if isinstance(signed, Mapping) else None


def _mirror_mismatch(record: Any, doc: _Signed) -> list[str]:
    """Fields of the typed payload / record that disagree with the signed document (an edited record)."""
    payload = _payload(record)
    out = []
    stack = _record_stack(record)
    if stack and stack != doc.stack:
        out.append(f"record stack {stack} != signed stack {doc.stack}")
    if isinstance(doc, BreakGlassGrant):
        operator = _attr(_attr(payload, "operator"), "id")
        if operator is not None and operator != doc.operator:
            out.append(f"record operator {operator} != signed operator {doc.operator}")
        waived = _attr(payload, "waived_controls")
        if waived is not None and tuple(sorted(waived)) != doc.waived_controls:
            out.append("record waived_controls differ from the signed grant")
        expires = _attr(payload, "expires_at")
        if isinstance(expires, datetime) and _utc_seconds(expires) != doc.expires_at:
            out.append("record expires_at differs from the signed grant")
    return out


@dataclass
class _Ledger:
    grants: dict[str, list[tuple[BreakGlassGrant, list[str]]]] = field(default_factory=dict)
    closes: dict[str, list[BreakGlassClose]] = field(default_factory=dict)
    reviews: dict[str, list[BreakGlassReview]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def _ledger(records: Iterable[Any]) -> _Ledger:
    ledger = _Ledger()
    models = {KIND_OPEN: BreakGlassGrant, KIND_CLOSE: BreakGlassClose, KIND_REVIEW: BreakGlassReview}
    for record in records:
        kind = _kind(record)
        model = models.get(kind)
        if model is None:
            continue
        doc = signed_document(record)
        record_id = _attr(record, "record_id", "?")
        if doc is None:
            ledger.unreadable.append(f"{kind} record {record_id} carries no signed document")
            continue
        try:
            parsed = model.model_validate(doc)
        except ValidationError as exc:
            from ps019.errors import validation_problems

            ledger.unreadable.append(f"{kind} record {record_id} is malformed ({validation_problems(exc)[0]})")
            continue
        if isinstance(parsed, BreakGlassGrant):
            ledger.grants.setdefault(parsed.grant_id, []).append((parsed, _mirror_mismatch(record, parsed)))
        elif isinstance(parsed, BreakGlassClose):
            ledger.closes.setdefault(parsed.grant_id, []).append(parsed)
        else:
            ledger.reviews.setdefault(parsed.grant_id, []).append(parsed)
    return ledger


# --- grant status ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueReview:
    grant_id: str
    stack: str
    operator: str
    incident: str
    due_at: datetime

    def describe(self) -> str:
        return (f"post-implementation review of break-glass grant {self.grant_id} (operator {self.operator}, "
                f"incident {self.incident}) overdue since {_fmt(self.due_at)}")


@dataclass(frozen=True)
class GrantStatus:
    """Everything known about one grant at ``now`` (used by ``check`` and ``list``)."""

    grant: BreakGlassGrant
    state: str  # active | expired | closed | invalid
    problems: tuple[str, ...]  # why the grant document itself cannot be trusted
    closed_at: datetime | None
    closed_by: str | None
    ended_at: datetime
    review: BreakGlassReview | None
    review_due_at: datetime
    review_overdue: bool
    notices: tuple[str, ...]

    @property
    def trusted(self) -> bool:
        return not self.problems


def _fmt(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grant_document_problems(grant: BreakGlassGrant, mismatches: list[str], trusted: Mapping[str, Any],
                             settings: BreakGlassSettings) -> list[str]:
    problems = []
    verification = grant.verify(trusted)
    if not verification.ok:
        problems.append(f"signature invalid / untrusted key: {verification.problem}")
    else:
        key = verification.key
        if not set(key.roles) & set(settings.operator_roles):
            problems.append(f"signed by key {grant.key_id} ({key.identity}) which lacks role "
                            f"{'/'.join(settings.operator_roles)}")
        if not identity_matches(key.identity, grant.operator):
            problems.append(f"signed by the key of {key.identity}, not of the operator {grant.operator}")
    problems.extend(f"record was edited: {m}" for m in mismatches)
    lifetime = grant.expires_at - grant.issued_at
    if lifetime <= timedelta(0):
        problems.append(f"expires_at {_fmt(grant.expires_at)} is not after issued_at {_fmt(grant.issued_at)}")
    elif lifetime > timedelta(hours=settings.max_ttl_hours):
        problems.append(f"lifetime {lifetime} exceeds the maximum of {settings.max_ttl_hours:g}h")
    return problems


def _valid_review(review: BreakGlassReview, grant: BreakGlassGrant, trusted: Mapping[str, Any],
                  settings: BreakGlassSettings, people: Any = None) -> str:
    """'' when the review counts, else why not."""
    verification = review.verify(trusted)
    if not verification.ok:
        return f"signature invalid / untrusted key: {verification.problem}"
    key = verification.key
    if not set(key.roles) & set(settings.reviewer_roles):
        return f"key of {key.identity} lacks role {'/'.join(settings.reviewer_roles)}"
    if not identity_matches(key.identity, review.reviewer):
        return f"signed by the key of {key.identity}, not of the reviewer {review.reviewer}"
    people = people or People()
    unknown = _unlisted_party(people, key.identity, grant.operator)
    if unknown:
        return unknown
    if review.reviewer == grant.operator or review.key_id == grant.key_id or identity_matches(
            key.identity, grant.operator) or people.same(key.identity, grant.operator) or people.same(
            review.reviewer, grant.operator):
        return f"reviewer {review.reviewer} is the operator of the grant; the review must be by a different person"
    if review.stack != grant.stack:
        return f"review is for stack {review.stack}, not {grant.stack}"
    return ""


def _unlisted_party(people: Any, reviewer: str, operator: str) -> str:
    """With a people directory, the review's "different person" rule needs both people in it: an operator identity
    the directory does not list (her break-glass session) is a stranger to her own reviewer key otherwise."""
    if not getattr(people, "directory", None):
        return ""
    missing = [name for name in (operator, reviewer) if not people.listed(name)]
    if not missing:
        return ""
    return (f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not a person in gate.people, so the "
            "reviewer cannot be shown to be a different person from the operator")


def _valid_close(close: BreakGlassClose, grant: BreakGlassGrant, trusted: Mapping[str, Any],
                 settings: BreakGlassSettings) -> str:
    verification = close.verify(trusted)
    if not verification.ok:
        return f"signature invalid / untrusted key: {verification.problem}"
    key = verification.key
    if close.key_id == grant.key_id:
        return ""  # the key that opened the grant closes it
    if not identity_matches(key.identity, close.closed_by):
        return f"signed by the key of {key.identity}, not of {close.closed_by}"
    if close.closed_by != grant.operator and not set(key.roles) & set(settings.closer_roles):
        return f"{close.closed_by} is neither the operator nor holds role {'/'.join(settings.closer_roles)}"
    return ""


def grant_statuses(records: Iterable[Any], now: datetime, gate_settings: Any,
                   settings: BreakGlassSettings | None = None) -> list[GrantStatus]:
    """The status of every grant found in ``records``, oldest first."""
    settings = settings or BreakGlassSettings()
    return _statuses(_ledger(records), now, trusted_keys_of(gate_settings), settings, People.of(gate_settings))


def _statuses(ledger: _Ledger, now: datetime, trusted: Mapping[str, Any],
              settings: BreakGlassSettings, people: Any = None) -> list[GrantStatus]:
    out = []
    for grant_id, versions in ledger.grants.items():
        grant = versions[0][0]
        # Any record of this grant whose plain fields disagree with the signed document fails the grant (closed):
        # the signed document is what counts, but an edited record means someone is tampering with the store.
        mismatches = list(dict.fromkeys(m for _, ms in versions for m in ms))
        problems = _grant_document_problems(grant, mismatches, trusted, settings)
        notices: list[str] = []
        if len({g.model_dump_json() for g, _ in versions}) > 1:
            problems.append(f"{len(versions)} conflicting records carry grant ID {grant_id}")
        elif len(versions) > 1:
            notices.append(f"grant {grant_id} was recorded {len(versions)} times (replayed record)")
        # A close always ends the grant, even a close whose signature does not verify: closing only ever takes
        # rights away, so honouring it is the safe reading (the notice tells the auditor it was not verified).
        closes = sorted(ledger.closes.get(grant_id, ()), key=lambda c: c.closed_at)
        closed_at = closed_by = None
        for close in closes:
            why = _valid_close(close, grant, trusted, settings)
            if why:
                notices.append(f"close of {grant_id} by {close.closed_by} not verified ({why}); honoured anyway")
            if close.stack != grant.stack:
                notices.append(f"close of {grant_id} names stack {close.stack}, grant is for {grant.stack}")
            if closed_at is None:
                closed_at, closed_by = close.closed_at, close.closed_by
        ended_at = min(closed_at, grant.expires_at) if closed_at else grant.expires_at
        review = None
        for candidate in sorted(ledger.reviews.get(grant_id, ()), key=lambda r: r.reviewed_at):
            why = _valid_review(candidate, grant, trusted, settings, people)
            if why:
                notices.append(f"review of {grant_id} by {candidate.reviewer} does not count: {why}")
            elif review is None:
                review = candidate
        review_due_at = ended_at + timedelta(hours=settings.review_sla_hours)
        review_overdue = not problems and review is None and now > review_due_at
        if problems:
            state = "invalid"
        elif closed_at is not None and closed_at <= now:
            state = "closed"
        elif now >= grant.expires_at:
            state = "expired"
        else:
            state = "active"
        out.append(GrantStatus(grant, state, tuple(problems), closed_at, closed_by, ended_at, review, review_due_at,
                               review_overdue, tuple(notices)))
    out.sort(key=lambda s: (s.grant.issued_at, s.grant.grant_id))
    return out


def overdue_reviews(statuses: Iterable[GrantStatus], stack_ref: str | None = None) -> list[OverdueReview]:
    return [OverdueReview(s.grant.grant_id, s.grant.stack, s.grant.operator, s.grant.incident, s.review_due_at)
            for s in statuses if s.review_overdue and (stack_ref is None or s.grant.stack == stack_ref)]


def blocking_overdue_reviews(statuses: Iterable[GrantStatus], stack_ref: str, at: datetime,
                             settings: BreakGlassSettings) -> list[OverdueReview]:
    """Earlier grants of ``stack_ref`` whose review was already overdue at ``at`` and is still missing: while one
    exists (and ``block_on_overdue_review`` is set), no new grant may be opened or used for the stack."""
    if not settings.block_on_overdue_review:
        return []
    return [o for o, s in ((OverdueReview(s.grant.grant_id, s.grant.stack, s.grant.operator, s.grant.incident,
                                          s.review_due_at), s) for s in statuses)
            if s.grant.stack == stack_ref and s.trusted and s.review is None and s.review_due_at < at]


def unreviewed_earlier_grants(statuses: Iterable[GrantStatus], grant: BreakGlassGrant, settings: BreakGlassSettings,
                              people: Any = None) -> list[GrantStatus]:
    """The same operator's other grants for ``grant``'s stack, issued at or before it, that have no valid review yet
    (``review_before_next_grant``). A live one is among them (it cannot have been reviewed): chaining grants,
    overlapping or back to back, would otherwise make ``maxTtlHours`` bound one grant but not the emergency. Grants
    whose document is not trusted do not count (nobody can deny an operator by appending junk)."""
    if not settings.review_before_next_grant:
        return []
    people = people or People()
    return [s for s in statuses
            if s.trusted and s.review is None and s.grant.stack == grant.stack and s.grant.grant_id != grant.grant_id
            and s.grant.issued_at <= grant.issued_at
            and (s.grant.key_id == grant.key_id or s.grant.operator == grant.operator
                 or people.same(s.grant.operator, grant.operator))]


def _unreviewed_text(earlier: GrantStatus) -> str:
    return (f"{earlier.grant.operator}'s earlier grant {earlier.grant.grant_id} for {earlier.grant.stack} (issued "
            f"{_fmt(earlier.grant.issued_at)}) has no post-implementation review yet; an operator's next grant for a "
            "stack needs one by someone else (breakGlass.reviewBeforeNextGrant)")


# --- the check the gate calls ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantCheck:
    """The break-glass part of the gate decision. ``valid`` means: a direct production change by
    ``deployer_identity`` on this stack may proceed as an **emergency** change; ``waived_controls`` are the controls
    whose mandatory findings become advisory ("overridden under grant …"); every other control stays as it is."""

    grant_id: str | None
    valid: bool
    problems: tuple[str, ...] = ()
    operator: str | None = None
    waived_controls: tuple[str, ...] = ()
    expires_at: datetime | None = None
    notices: tuple[str, ...] = ()
    incident: str | None = None
    reason: str | None = None
    stack: str | None = None
    overdue_reviews: tuple[OverdueReview, ...] = ()

    @property
    def change_class(self) -> str | None:
        return "emergency" if self.valid else None

    def summary(self) -> str:
        if self.grant_id is None:
            return "; ".join(self.problems) or "no break-glass grant"
        if self.valid:
            return (f"break-glass grant {self.grant_id} (operator {self.operator}, incident {self.incident}, "
                    f"expires {_fmt(self.expires_at)})")
        return f"break-glass grant {self.grant_id} unusable: " + "; ".join(self.problems)

    def evidence_reference(self) -> dict[str, Any]:
        """Fields for the deployment record's ``break_glass`` VerifiedReference."""
        return {"ref_id": self.grant_id or "-", "kind": "break_glass", "verified": self.valid,
                "failures": list(self.problems), "identity": self.operator, "expires_at": self.expires_at,
                "details": {"waived_controls": list(self.waived_controls), "incident": self.incident,
                            "reason": self.reason, "notices": list(self.notices)}}


def check_break_glass(
    records: Iterable[Any],
    stack_ref: str,
    deployer_identity: str | None,
    now: datetime,
    gate_settings: Any,
    break_glass_settings: BreakGlassSettings | None = None,
    *,
    grant_id: str | None = None,
    known_controls: Iterable[str] | None = None,
    deployer_verified_by: str | None = None,
    sts_arn: str | None = None,
) -> GrantCheck:
    """Is there a grant that lets ``deployer_identity`` change ``stack_ref`` now?

    ``records``: the break-glass governance records of the stack (see :func:`load_break_glass_records`; when a grant
    ID is presented, its records too). ``grant_id``: the grant the deployer presented (``PS019_BREAK_GLASS_GRANT``);
    without it, the newest usable grant of the stack issued to the deployer is used. ``known_controls``: the control
    IDs of this pack (unknown waived IDs are dropped with a notice). ``deployer_verified_by``: how the deployer's
    identity was established (``sts`` | ``ci`` | ``local-user``); a ``local-user`` name is only asserted, so it can
    never use a grant.
    """
    settings = break_glass_settings or BreakGlassSettings()
    trusted = trusted_keys_of(gate_settings)
    if sts_arn is None and deployer_verified_by == "sts":
        sts_arn = deployer_identity
    ledger = _ledger(records)
    statuses = _statuses(ledger, now, trusted, settings, People.of(gate_settings))
    overdue = tuple(overdue_reviews(statuses, stack_ref))
    base_notices = tuple(ledger.unreadable) + tuple(o.describe() for o in overdue)

    if grant_id is not None:
        candidates = [s for s in statuses if s.grant.grant_id == grant_id]
        if not candidates:
            return GrantCheck(grant_id, False, (f"grant {grant_id} not found in the evidence store",),
                              notices=base_notices, stack=stack_ref, overdue_reviews=overdue)
    else:
        # Without a presented grant: the deployer's own grants (so "your grant expired" is said), and other people's
        # grants only while they are live (an old closed grant of someone else is noise, not a reason).
        candidates = [s for s in statuses if s.grant.stack == stack_ref
                      and (s.grant.operator in (deployer_identity, sts_arn)
                           or (s.closed_at is None and now < s.grant.expires_at))]
        if not candidates:
            return GrantCheck(None, False, (f"no break-glass grant for stack {stack_ref}",), notices=base_notices,
                              stack=stack_ref, overdue_reviews=overdue)

    known = set(known_controls) if known_controls is not None else None
    # A grant issued to an STS-verified operator is compared with the STS-verified caller; any other grant with the
    # deployer (for a verified CI OIDC token: its actor).
    people = People.of(gate_settings)
    checks = [_check_one(s, statuses, stack_ref, (sts_arn or deployer_identity) if s.grant.identity_source ==
                         "aws-sts" else deployer_identity, now, settings, known, base_notices, overdue, people)
              for s in candidates]
    if deployer_verified_by == "local-user":
        unverified = (f"the deploying identity {deployer_identity} is only asserted (local user name), not verified; "
                      "a grant can only be used by an identity verified with STS or by the CI system")
        checks = [dataclasses.replace(c, valid=False, problems=c.problems + (unverified,)) for c in checks]
    elif deployer_verified_by is not None:
        # A grant is only as strong as the identity it was issued to: one opened by an STS-verified operator cannot
        # be used by a deployer who is only named by CI environment variables (settable on any laptop).
        checks = [dataclasses.replace(c, valid=False, problems=c.problems + (
                      f"grant {s.grant.grant_id} was issued to an STS-verified identity; this deployer was "
                      f"identified by {deployer_verified_by}, not STS",))
                  if s.grant.identity_source == "aws-sts" and sts_arn is None else
                  dataclasses.replace(c, valid=False, problems=c.problems + (
                      f"grant {s.grant.grant_id} was issued to an identity verified by a CI OIDC ID token; this "
                      f"deployer was identified by {deployer_verified_by}",))
                  if s.grant.identity_source == "ci-oidc" and deployer_verified_by != "oidc" else c
                  for s, c in zip(candidates, checks)]
    valid = [c for c in checks if c.valid]
    if valid:
        return valid[-1]
    mine = [c for c in checks if c.operator in (deployer_identity, sts_arn)]
    return (mine or checks)[-1]


def _check_one(status: GrantStatus, statuses: Sequence[GrantStatus], stack_ref: str, deployer: str | None,
               now: datetime, settings: BreakGlassSettings, known: set[str] | None, base_notices: tuple[str, ...],
               overdue: tuple[OverdueReview, ...], people: Any = None) -> GrantCheck:
    grant = status.grant
    problems = list(status.problems)
    notices = list(base_notices) + list(status.notices)
    if grant.stack != stack_ref:
        problems.append(f"grant is for stack {grant.stack}, not {stack_ref}")
    if deployer is None:
        problems.append(f"the deploying identity is unknown; grant {grant.grant_id} may only be used by its "
                        f"verified operator {grant.operator}")
    elif deployer != grant.operator:
        problems.append(f"issued to {grant.operator}, not {deployer}")
    if status.closed_at is not None and status.closed_at <= now:
        problems.append(f"closed at {_fmt(status.closed_at)} by {status.closed_by}")
    if now >= grant.expires_at:
        problems.append(f"expired at {_fmt(grant.expires_at)}")
    if grant.issued_at > now + timedelta(seconds=settings.clock_skew_seconds):
        problems.append(f"issued at {_fmt(grant.issued_at)}, in the future")
    # Judged when the grant is used, not at the issued_at its operator signed: a grant backdated to just before an
    # earlier review fell due would otherwise dodge the block for its whole lifetime.
    for block in blocking_overdue_reviews(statuses, grant.stack, max(grant.issued_at, now), settings):
        if block.grant_id != grant.grant_id:
            problems.append(f"blocked by overdue review of {block.grant_id} (due {_fmt(block.due_at)})")
    problems.extend(_unreviewed_text(e) for e in unreviewed_earlier_grants(statuses, grant, settings, people))
    waived = []
    for control_id in grant.waived_controls:
        if not settings.is_waivable(control_id):
            notices.append(f"{control_id} is not waivable; grant {grant.grant_id} does not waive it")
        elif known is not None and control_id not in known:
            notices.append(f"{control_id} is not a control of this pack; ignored")
        else:
            waived.append(control_id)
    return GrantCheck(grant.grant_id, not problems, tuple(problems), grant.operator, tuple(waived), grant.expires_at,
                      tuple(dict.fromkeys(notices)), grant.incident, grant.reason, grant.stack, overdue)


def presented_grant_id(environ: Mapping[str, str] | None = None,
                       stack_config: Mapping[str, str] | None = None) -> str | None:
    """The grant a deployer presents: ``PS019_BREAK_GLASS_GRANT`` (environment) or stack config
    ``ps019:breakGlassGrant``. Optional: without it the gate looks for the deployer's grant on the stack."""
    env = os.environ if environ is None else environ
    value = env.get("PS019_BREAK_GLASS_GRANT") or (stack_config or {}).get("ps019:breakGlassGrant")
    return value.strip() if value and value.strip() else None


# --- edges: the evidence store ---------------------------------------------------------------------------------------
# Thin I/O around the pure logic above. The CLI and the pack adapter call these; nothing above does I/O.


def _split_stack(stack_ref: str) -> tuple[str, str, str]:
    if not re.match(STACK_REF_PATTERN, stack_ref or ""):
        raise InputError(f"stack {stack_ref!r} is not of the form ORGANIZATION/PROJECT/STACK")
    org, project, stack = stack_ref.split("/")
    return org, project, stack


def _records(stored: Iterable[Any]) -> list[Any]:
    return [s.record if hasattr(s, "envelope") else s for s in stored]


def load_break_glass_records(store: Any, stack_ref: str, grant_id: str | None = None) -> list[Any]:
    """The break-glass governance records of ``stack_ref`` (oldest first), plus -- when the deployer presented a
    grant ID -- that grant's records wherever they are (so a grant for another stack is reported as such)."""
    found: dict[str, Any] = {}
    for kind in BREAK_GLASS_KINDS:
        for record in _records(store.query(stack=stack_ref, kind=kind)):
            found[record.record_id] = record
    if grant_id is not None:
        for kind in BREAK_GLASS_KINDS:
            for record in _records(store.query(kind=kind)):
                if _attr(_payload(record), "grant_id") == grant_id:
                    found[record.record_id] = record
    return sorted(found.values(), key=lambda r: (_attr(r, "started_at"), _attr(r, "sequence") or 0))


def _identity_model(identity_id: str, kind: str, verified_by: str | None, account: str | None = None) -> Any:
    from ps019.evidence.record import Identity

    kind = kind if kind in ("aws-sts", "ci-oidc", "ci-env", "local-user", "signing-key") else "unknown"
    return Identity(id=identity_id, kind=kind, verified=True, verified_by=verified_by, account=account)


def _environment_tier(stack_ref: str, environment_settings: Any) -> str:
    try:
        from ps019.gate.settings import classify_environment

        org, project, stack = stack_ref.split("/")
        return classify_environment(org, project, stack, None, None, environment_settings).tier
    except Exception:  # classification is a convenience for queries here, never a reason to fail a governance act
        return "unknown"


def grant_record(grant: BreakGlassGrant, identity: VerifiedIdentity, environment: str = "unknown") -> Any:
    from ps019.evidence.record import BreakGlassOpenPayload, EvidenceRecord, RecordKind

    org, project, stack = _split_stack(grant.stack)
    actor = _identity_model(identity.id, identity.source, identity.verified_by, identity.account)
    payload = BreakGlassOpenPayload(
        grant_id=grant.grant_id, operator=actor, reason=grant.reason, incident=grant.incident,
        opened_at=grant.issued_at, expires_at=grant.expires_at, waived_controls=list(grant.waived_controls),
        details={"signed": grant.document(), "purpose": PURPOSE_GRANT})
    return EvidenceRecord(kind=RecordKind.BREAK_GLASS_OPEN, started_at=grant.issued_at, organization=org,
                          project=project, stack=stack, environment=environment, change_class="emergency",
                          outcome="recorded", actor=actor, payload=payload)


def close_record(close: BreakGlassClose, identity: VerifiedIdentity, environment: str = "unknown") -> Any:
    from ps019.evidence.record import BreakGlassClosePayload, EvidenceRecord, RecordKind

    org, project, stack = _split_stack(close.stack)
    actor = _identity_model(identity.id, identity.source, identity.verified_by, identity.account)
    payload = BreakGlassClosePayload(grant_id=close.grant_id, closed_by=actor, closed_at=close.closed_at,
                                     notes=close.notes or None,
                                     details={"signed": close.document(), "purpose": PURPOSE_CLOSE})
    return EvidenceRecord(kind=RecordKind.BREAK_GLASS_CLOSE, started_at=close.closed_at, organization=org,
                          project=project, stack=stack, environment=environment, outcome="recorded", actor=actor,
                          payload=payload)


def review_record(review: BreakGlassReview, environment: str = "unknown") -> Any:
    from ps019.evidence.record import BreakGlassReviewPayload, EvidenceRecord, RecordKind

    org, project, stack = _split_stack(review.stack)
    actor = _identity_model(review.reviewer, "signing-key", f"trusted key {review.key_id}")
    payload = BreakGlassReviewPayload(grant_id=review.grant_id, reviewer=actor, reviewed_at=review.reviewed_at,
                                      notes=review.notes, links=list(review.links),
                                      details={"signed": review.document(), "purpose": PURPOSE_REVIEW})
    return EvidenceRecord(kind=RecordKind.BREAK_GLASS_REVIEW, started_at=review.reviewed_at, organization=org,
                          project=project, stack=stack, environment=environment, outcome="recorded", actor=actor,
                          payload=payload)


def _trusted_key_for(private_key: Any, trusted: Mapping[str, signing.TrustedKey], roles: Sequence[str],
                     what: str) -> signing.TrustedKey:
    kid = signing.key_id(private_key)
    key = trusted.get(kid)
    if key is None:
        raise InputError(f"key {kid} is not among the gate's trusted keys; it cannot {what}")
    if not set(key.roles) & set(roles):
        raise InputError(f"key {kid} ({key.identity}) has roles {', '.join(key.roles) or 'none'}; "
                         f"to {what} it needs one of: {', '.join(roles)}")
    return key


def open_grant(store: Any, evidence_signer: Any, private_key: Any, identity: VerifiedIdentity, stack_ref: str, *,
               reason: str, incident: str, ttl: timedelta, waive: Sequence[str], gate_settings: Any,
               settings: BreakGlassSettings | None = None, known_controls: Iterable[str] | None = None,
               now: datetime | None = None, environment_settings: Any = None) -> BreakGlassGrant:
    """Validate, sign and record a new grant; refuse anything the check would later reject."""
    settings = settings or BreakGlassSettings()
    now = _utc_seconds(now or datetime.now(timezone.utc))
    _split_stack(stack_ref)
    if not reason.strip() or not incident.strip():
        raise InputError("a break-glass grant needs a non-empty --reason and --incident")
    if ttl > timedelta(hours=settings.max_ttl_hours):
        raise InputError(f"--ttl {ttl} exceeds the maximum of {settings.max_ttl_hours:g}h (breakGlass.maxTtlHours)")
    if ttl < timedelta(minutes=1):
        raise InputError("--ttl must be at least 1m")
    known = set(known_controls) if known_controls is not None else None
    for control_id in waive:
        if control_id.lower() in ("all", "*") or not re.match(CONTROL_ID_PATTERN, control_id):
            raise InputError(f"--waive {control_id!r}: name one control ID per --waive (no wildcards, no 'all')")
        if known is not None and control_id not in known:
            raise InputError(f"--waive {control_id}: no such control in this pack (see `ps019 controls`)")
        if not settings.is_waivable(control_id):
            raise InputError(f"--waive {control_id}: this control is declared non-waivable "
                             f"(breakGlass.nonWaivableControls)")
    trusted = trusted_keys_of(gate_settings)
    key = _trusted_key_for(private_key, trusted, settings.operator_roles, "open a break-glass grant")
    if not identity_matches(key.identity, identity.id):
        raise InputError(f"key {key.key_id} belongs to {key.identity}, but you are verified as {identity.id} "
                         f"({identity.verified_by}); use your own key")
    statuses = grant_statuses(load_break_glass_records(store, stack_ref), now, gate_settings, settings)
    blocks = blocking_overdue_reviews(statuses, stack_ref, now, settings)
    if blocks:
        raise InputError("break-glass for " + stack_ref + " is blocked until the overdue review is recorded: "
                         + "; ".join(b.describe() for b in blocks))
    grant = BreakGlassGrant(grant_id=new_grant_id(now), stack=stack_ref, operator=identity.id,
                            identity_source=identity.source, reason=reason.strip(), incident=incident.strip(),
                            waived_controls=tuple(waive), issued_at=now, expires_at=now + ttl, key_id=key.key_id)
    earlier = unreviewed_earlier_grants(statuses, grant, settings, People.of(gate_settings))
    if earlier:
        raise InputError("; ".join(_unreviewed_text(e) for e in earlier)
                         + ". Close it if it is still open, and have a reviewer record `ps019 break-glass review`")
    grant = sign_document(grant, private_key)
    store.append(grant_record(grant, identity, _environment_tier(stack_ref, environment_settings)), evidence_signer)
    log.info("break_glass.opened", grant_id=grant.grant_id, stack_ref=stack_ref, operator=identity.id,
             expires_at=_fmt(grant.expires_at), waived=list(grant.waived_controls))
    return grant


def _find_status(store: Any, grant_id: str, now: datetime, gate_settings: Any,
                 settings: BreakGlassSettings) -> GrantStatus:
    if not re.match(GRANT_ID_PATTERN, grant_id or ""):
        raise InputError(f"{grant_id!r} is not a grant ID (BG-YYYYMMDD-xxxxxxxxxxxx)")
    opens = [r for r in _records(store.query(kind=KIND_OPEN)) if _attr(_payload(r), "grant_id") == grant_id]
    if not opens:
        raise InputError(f"grant {grant_id} not found in the evidence store")
    stack_ref = _record_stack(opens[0])
    records = load_break_glass_records(store, stack_ref, grant_id)
    for status in grant_statuses(records, now, gate_settings, settings):
        if status.grant.grant_id == grant_id:
            return status
    raise InputError(f"grant {grant_id}: its record is unreadable")


def close_grant(store: Any, evidence_signer: Any, private_key: Any, identity: VerifiedIdentity | None, grant_id: str,
                *, gate_settings: Any, settings: BreakGlassSettings | None = None, notes: str = "",
                now: datetime | None = None, environment_settings: Any = None) -> BreakGlassClose:
    """Close a grant. The signing key is what identifies the closer (closing only takes rights away): the key that
    opened the grant closes it as its operator, from anywhere (a laptop without AWS credentials included); any other
    key needs one of ``closer_roles``. ``identity``, when given, must belong to the key."""
    settings = settings or BreakGlassSettings()
    now = _utc_seconds(now or datetime.now(timezone.utc))
    status = _find_status(store, grant_id, now, gate_settings, settings)
    if status.closed_at is not None:
        raise InputError(f"grant {grant_id} was already closed at {_fmt(status.closed_at)} by {status.closed_by}")
    trusted = trusted_keys_of(gate_settings)
    kid = signing.key_id(private_key)
    key = trusted.get(kid)
    if key is None:
        raise InputError(f"key {kid} is not among the gate's trusted keys")
    if identity is not None and not identity_matches(key.identity, identity.id):
        raise InputError(f"key {kid} belongs to {key.identity}, but you are verified as {identity.id}")
    if kid == status.grant.key_id:
        closed_by = status.grant.operator
    elif set(key.roles) & set(settings.closer_roles):
        closed_by = identity.id if identity is not None else key.identity
    else:
        raise InputError(f"grant {grant_id} belongs to {status.grant.operator}; only the key that opened it or a key "
                         f"with role {'/'.join(settings.closer_roles)} may close it")
    close = BreakGlassClose(grant_id=grant_id, stack=status.grant.stack, closed_by=closed_by, closed_at=now,
                            notes=notes, key_id="")
    close = sign_document(close, private_key)
    actor = identity or VerifiedIdentity(closed_by, "signing-key", f"trusted key {kid}")
    # The record carries the tier of the stack it concerns, like the open record (`list --environment` finds it).
    store.append(close_record(close, actor, _environment_tier(close.stack, environment_settings)), evidence_signer)
    log.info("break_glass.closed", grant_id=grant_id, closed_by=closed_by)
    return close


def review_grant(store: Any, evidence_signer: Any, private_key: Any, reviewer: str, grant_id: str, *, notes: str,
                 links: Sequence[str], gate_settings: Any, settings: BreakGlassSettings | None = None,
                 now: datetime | None = None, environment_settings: Any = None) -> BreakGlassReview:
    settings = settings or BreakGlassSettings()
    now = _utc_seconds(now or datetime.now(timezone.utc))
    if not notes.strip():
        raise InputError("a post-implementation review needs --notes")
    status = _find_status(store, grant_id, now, gate_settings, settings)
    grant = status.grant
    trusted = trusted_keys_of(gate_settings)
    if reviewer == grant.operator:
        raise InputError(f"{reviewer} operated grant {grant_id}; the post-implementation review must be recorded by "
                         "a different person")
    if signing.key_id(private_key) == grant.key_id:
        raise InputError(f"this is the key that opened grant {grant_id}; the post-implementation review must be "
                         "recorded by a different person with their own key")
    key = _trusted_key_for(private_key, trusted, settings.reviewer_roles, "review a break-glass grant")
    if not identity_matches(key.identity, reviewer):
        raise InputError(f"--reviewer {reviewer} does not match the key's identity {key.identity}")
    if identity_matches(key.identity, grant.operator) or People.of(gate_settings).same(key.identity, grant.operator):
        raise InputError(f"the key of {key.identity} also identifies the operator of grant {grant_id}; the "
                         "post-implementation review must be recorded by a different person")
    unknown = _unlisted_party(People.of(gate_settings), key.identity, grant.operator)
    if unknown:
        raise InputError(f"{unknown}; add them to gate.people (ps019-settings) first")
    if status.state == "active":
        raise InputError(f"grant {grant_id} is still active (expires {_fmt(grant.expires_at)}); close it first")
    review = BreakGlassReview(grant_id=grant_id, stack=grant.stack, reviewer=reviewer, reviewed_at=now,
                              notes=notes.strip(), links=tuple(links), key_id="")
    review = sign_document(review, private_key)
    store.append(review_record(review, _environment_tier(review.stack, environment_settings)), evidence_signer)
    log.info("break_glass.reviewed", grant_id=grant_id, reviewer=reviewer)
    return review
