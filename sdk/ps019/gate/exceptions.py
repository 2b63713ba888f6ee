"""Exceptions: approved, recorded, expiring waivers of ONE control on ONE resource (or a URN pattern) of ONE stack.

An exception is a document signed by an approver's Ed25519 key (purpose ``ps019/exception/v1``) -- the key must be
one of the gate's ``trusted_keys`` with role ``approver`` or ``security`` (configurable) and its identity must be the
``approved_by`` named in the document. It is recorded as an ``exception`` governance record in the evidence store
(the signed document in ``payload.details["signed"]``). :func:`active_exceptions` is the pure function the adapter
calls: valid exceptions become :class:`ps019.gate.waivers.Waiver` s; expired, unapproved or otherwise unusable ones do
nothing at all, and are reported (control ``PS019-GATE-052``) with the reason.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Iterable, Mapping

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from ps019.gate import signing
from ps019.gate.breakglass import (
    CONTROL_ID_PATTERN,
    STACK_REF_PATTERN,
    UtcSeconds,
    _attr,
    _fmt,
    _kind,
    _payload,
    _record_stack,
    _Signed,
    _utc_seconds,
    identity_matches,
    signed_document,
    trusted_keys_of,
)

KIND_EXCEPTION = "exception"
EXCEPTION_ID_PATTERN = r"^EX-\d{8}-[0-9a-f]{12}$"


class ExceptionSettings(BaseModel):
    """The ``exceptions`` section of ``ps019-settings`` (camelCase or snake_case keys)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=to_camel),
    )

    approver_roles: tuple[str, ...] = Field(("approver", "security"), description="roles that may approve one")
    max_duration_days: float = Field(90, gt=0, description="longest time from approval to expiry")
    non_excepted_controls: tuple[str, ...] = Field(
        ("PS019-EVID-*", "PS019-EVIDENCE-*", "PS019-GATE-00?", "PS019-GATE-05?"),
        description="control IDs (fnmatch patterns) that no exception may waive: the evidence controls, the change "
                    "gate itself (one approver key must not waive the two-person rule; emergencies use break-glass) "
                    "and the break-glass/exception reporting controls")

    def is_exceptable(self, control_id: str) -> bool:
        return not any(fnmatch.fnmatchcase(control_id, p) for p in self.non_excepted_controls)


class ControlException(_Signed):
    """The signed exception document."""

    PURPOSE: ClassVar[str] = signing.PURPOSE_EXCEPTION

    exception_id: str = Field(pattern=EXCEPTION_ID_PATTERN)
    control_id: str = Field(pattern=CONTROL_ID_PATTERN)
    resource: str = Field(min_length=1, description="a URN, or an fnmatch pattern over URNs of this stack")
    stack: str = Field(pattern=STACK_REF_PATTERN)
    reason: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)
    approved_at: UtcSeconds
    expires_at: UtcSeconds


    @field_validator("resource")
    @classmethod
    def _scoped_to_stack_urns(cls, value: str, info: Any) -> str:
        if not value.startswith("urn:pulumi:"):
            raise ValueError(f"resource {value!r} must be a Pulumi URN or a URN pattern starting with urn:pulumi:")
        return value

    def urn_prefix_problem(self) -> str:
        """An exception may only name resources of its own stack: the URN's stack and project must be literal."""
        org_project_stack = self.stack.split("/")
        prefix = f"urn:pulumi:{org_project_stack[2]}::{org_project_stack[1]}::"
        if not self.resource.startswith(prefix) or any(ch in self.resource[: len(prefix)] for ch in "*?["):
            return f"resource {self.resource!r} is not a URN of stack {self.stack} (must start with {prefix})"
        # After the prefix comes the resource's qualified type, then ``::`` and its name. The type must be literal:
        # any wildcard before the name (``*``, ``*:*``, ``[!x]*``, ...) could match every resource of the stack.
        rest = self.resource[len(prefix):]
        type_part, sep, name_part = rest.partition("::")
        if not sep or not type_part or not name_part or any(ch in type_part for ch in "*?["):
            return (f"resource {self.resource!r} could match every resource of the stack; name the resource's type "
                    f"literally ({prefix}<type>::<name or pattern>)")
        return ""

    def covers(self, control_id: str, urn: str) -> bool:
        return control_id == self.control_id and fnmatch.fnmatchcase(urn, self.resource)


def new_exception_id(now: datetime) -> str:
    return f"EX-{now.astimezone(timezone.utc):%Y%m%d}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class ExceptionsSummary:
    """What the adapter hands to controls (``ctx.gate.exceptions``) and to the evidence record."""

    valid: tuple[ControlException, ...] = ()
    ignored: tuple[tuple[ControlException | None, str], ...] = ()
    unreadable: tuple[str, ...] = field(default_factory=tuple)

    def waivers(self) -> list[Any]:
        from ps019.gate.waivers import waivers_from_exceptions

        return waivers_from_exceptions(self.valid)

    def evidence_references(self) -> list[dict[str, Any]]:
        out = []
        for exc in self.valid:
            out.append({"ref_id": exc.exception_id, "kind": "exception", "verified": True, "failures": [],
                        "identity": exc.approved_by, "keyid": exc.key_id, "expires_at": exc.expires_at,
                        "details": {"control_id": exc.control_id, "resource": exc.resource}})
        for exc, reason in self.ignored:
            if exc is not None:
                out.append({"ref_id": exc.exception_id, "kind": "exception", "verified": False, "failures": [reason],
                            "identity": exc.approved_by, "keyid": exc.key_id, "expires_at": exc.expires_at,
                            "details": {"control_id": exc.control_id, "resource": exc.resource}})
        return out


def _problem(exc: ControlException, stack_ref: str, now: datetime, trusted: Any,
             settings: ExceptionSettings) -> str:
    verification = exc.verify(trusted)
    if not verification.ok:
        return f"not approved: signature invalid / untrusted key ({verification.problem})"
    key = verification.key
    if not set(key.roles) & set(settings.approver_roles):
        return f"not approved: key of {key.identity} lacks role {'/'.join(settings.approver_roles)}"
    if not identity_matches(key.identity, exc.approved_by):
        return f"not approved: signed by the key of {key.identity}, not of {exc.approved_by}"
    if exc.stack != stack_ref:
        return f"for stack {exc.stack}, not {stack_ref}"
    prefix_problem = exc.urn_prefix_problem()
    if prefix_problem:
        return prefix_problem
    if not settings.is_exceptable(exc.control_id):
        return f"{exc.control_id} may not be waived by an exception"
    if now >= exc.expires_at:
        return f"expired at {_fmt(exc.expires_at)}"
    if exc.expires_at - exc.approved_at > timedelta(days=settings.max_duration_days):
        return f"lasts longer than the maximum of {settings.max_duration_days:g} days"
    if exc.approved_at > now + timedelta(minutes=5):
        return f"approved at {_fmt(exc.approved_at)}, in the future"
    return ""


def _mirror_mismatch(record: Any, exc: ControlException) -> str:
    payload = _payload(record)
    stack = _record_stack(record)
    if stack and stack != exc.stack:
        return f"record stack {stack} != signed stack {exc.stack}"
    for name in ("control_id", "resource", "exception_id"):
        value = _attr(payload, name)
        if value is not None and value != getattr(exc, name):
            return f"record {name} {value!r} != signed {getattr(exc, name)!r}"
    expires = _attr(payload, "expires_at")
    if isinstance(expires, datetime) and _utc_seconds(expires) != exc.expires_at:
        return "record expires_at differs from the signed exception"
    return ""


def escalation_problem(exc: ControlException, trusted: Any, gate_settings: Any,
                       control_severities: Mapping[str, Any] | None, tier: str | None) -> str:
    """'' unless the exception downgrades a finding at or above the escalation threshold of the tier
    (``gate.escalation``) and its signer holds none of the escalation roles: an approver without security delegation
    may not accept that risk for 90 days, any more than for one change (PS019-GATE-005)."""
    from ps019.model import Severity

    escalation = getattr(gate_settings, "escalation", None)
    if escalation is None or control_severities is None or exc.control_id not in control_severities:
        return ""
    if tier is not None and tier not in escalation.tiers:
        return ""
    severity = Severity(control_severities[exc.control_id])
    if severity.rank < Severity(escalation.severity).rank:
        return ""
    key = trusted.get(exc.key_id)
    if key is not None and set(key.roles) & set(escalation.required_roles):
        return ""
    return (f"{exc.control_id} is {severity.value} severity, at or above the escalation threshold "
            f"{Severity(escalation.severity).value}: an exception to it needs the signature of a key with role "
            f"{'/'.join(escalation.required_roles)} (gate.escalation.requiredRoles), and "
            f"{key.identity if key else exc.approved_by} has none")


def self_approval_problem(exc: ControlException, trusted: Any, gate_settings: Any,
                          deployer_names: Iterable[str]) -> str:
    """'' unless the exception's approver is the person deploying now and ``separationOfDuties.approverNotDeployer``
    is on: her approval of the change would not count, and a waiver she signed alone is an approval of the risk
    (people compared like approvals: the signing key's identity, ``gate.people`` and aliases)."""
    from ps019.gate.people import People

    sod = getattr(gate_settings, "separation_of_duties", None)
    names = [n for n in deployer_names if n]
    if sod is None or not sod.approver_not_deployer or not names:
        return ""
    key = trusted.get(exc.key_id)
    approver = key.identity if key is not None else exc.approved_by
    people = People.of(gate_settings)
    if not any(people.same(approver, name) or people.same(exc.approved_by, name) for name in names):
        return ""
    return (f"approved by {approver}, who is deploying this update ({names[0]}): with "
            "gate.separationOfDuties.approverNotDeployer an exception waives nothing in its own approver's deployment")


def active_exceptions(records: Iterable[Any], stack_ref: str, now: datetime, gate_settings: Any,
                      settings: ExceptionSettings | None = None, *, known_controls: Iterable[str] | None = None,
                      control_severities: Mapping[str, Any] | None = None, tier: str | None = None,
                      deployer_names: Iterable[str] = (),
                      ) -> tuple[list[ControlException], list[tuple[ControlException | None, str]]]:
    """(valid, ignored). Ignored exceptions have no effect; each comes with the reason (expired at …, not approved:
    …, for stack …, above the escalation threshold without a security signature, approved by the deployer). Unreadable
    records are reported as ``(None, reason)``. ``control_severities`` / ``tier``: for the escalation rule
    (:func:`escalation_problem`); ``deployer_names``: who deploys now (:func:`self_approval_problem`)."""
    settings = settings or ExceptionSettings()
    trusted = trusted_keys_of(gate_settings)
    known = set(known_controls) if known_controls is not None else None
    valid: list[ControlException] = []
    ignored: list[tuple[ControlException | None, str]] = []
    seen: dict[str, ControlException] = {}
    for record in records:
        if _kind(record) != KIND_EXCEPTION:
            continue
        doc = signed_document(record)
        record_id = _attr(record, "record_id", "?")
        if doc is None:
            ignored.append((None, f"exception record {record_id} carries no signed document"))
            continue
        try:
            exc = ControlException.model_validate(doc)
        except ValidationError as err:
            from ps019.errors import validation_problems

            ignored.append((None, f"exception record {record_id} is malformed ({validation_problems(err)[0]})"))
            continue
        if exc.exception_id in seen:
            if seen[exc.exception_id] != exc:
                ignored.append((exc, f"conflicting records carry exception ID {exc.exception_id}"))
            continue  # an identical replay adds nothing
        seen[exc.exception_id] = exc
        problem = _mirror_mismatch(record, exc)
        problem = f"record was edited: {problem}" if problem else _problem(exc, stack_ref, now, trusted, settings)
        if not problem and known is not None and exc.control_id not in known:
            problem = f"{exc.control_id} is not a control of this pack"
        if not problem:
            problem = escalation_problem(exc, trusted, gate_settings, control_severities, tier)
        if not problem:
            problem = self_approval_problem(exc, trusted, gate_settings, deployer_names)
        if problem:
            ignored.append((exc, problem))
        else:
            valid.append(exc)
    conflicting = {e.exception_id for e, r in ignored if e is not None and r.startswith("conflicting")}
    if conflicting:
        valid = [e for e in valid if e.exception_id not in conflicting]
    valid.sort(key=lambda e: (e.approved_at, e.exception_id))
    return valid, ignored


def summarize(records: Iterable[Any], stack_ref: str, now: datetime, gate_settings: Any,
              settings: ExceptionSettings | None = None, *, known_controls: Iterable[str] | None = None,
              control_severities: Mapping[str, Any] | None = None, tier: str | None = None,
              deployer_names: Iterable[str] = ()) -> ExceptionsSummary:
    valid, ignored = active_exceptions(records, stack_ref, now, gate_settings, settings,
                                       known_controls=known_controls, control_severities=control_severities,
                                       tier=tier, deployer_names=deployer_names)
    return ExceptionsSummary(tuple(valid), tuple(ignored))


# --- edges: the evidence store ---------------------------------------------------------------------------------------


def load_exception_records(store: Any, stack_ref: str) -> list[Any]:
    """The ``exception`` governance records of ``stack_ref``, oldest first."""
    stored = store.query(stack=stack_ref, kind=KIND_EXCEPTION)
    records = [s.record if hasattr(s, "envelope") else s for s in stored]
    return sorted(records, key=lambda r: (r.started_at, r.sequence or 0))


def exception_record(exc: ControlException, environment: str = "unknown") -> Any:
    from ps019.evidence.record import EvidenceRecord, ExceptionPayload, Identity, RecordKind

    org, project, stack = exc.stack.split("/")
    approver = Identity(id=exc.approved_by, kind="signing-key", verified=True,
                        verified_by=f"trusted key {exc.key_id}")
    payload = ExceptionPayload(exception_id=exc.exception_id, control_id=exc.control_id, resource=exc.resource,
                               reason=exc.reason, approved_by=[approver], expires_at=exc.expires_at,
                               details={"signed": exc.document(), "purpose": exc.PURPOSE})
    return EvidenceRecord(kind=RecordKind.EXCEPTION, started_at=exc.approved_at, organization=org, project=project,
                          stack=stack, environment=environment, outcome="recorded", actor=approver, payload=payload)


def add_exception(store: Any, evidence_signer: Any, private_key: Any, *, control_id: str, resource: str,
                  stack_ref: str, reason: str, expires_at: datetime, approved_by: str, gate_settings: Any,
                  settings: ExceptionSettings | None = None, known_controls: Iterable[str] | None = None,
                  now: datetime | None = None, environment_settings: Any = None) -> ControlException:
    """Validate, sign and record an exception; refuse anything :func:`active_exceptions` would ignore."""
    from ps019.errors import InputError

    settings = settings or ExceptionSettings()
    now = _utc_seconds(now or datetime.now(timezone.utc))
    if known_controls is not None and control_id not in set(known_controls):
        raise InputError(f"--control {control_id}: no such control in this pack (see `ps019 controls`)")
    try:
        exc = ControlException(exception_id=new_exception_id(now), control_id=control_id, resource=resource,
                               stack=stack_ref, reason=reason.strip(), approved_by=approved_by, approved_at=now,
                               expires_at=expires_at, key_id="")
    except ValidationError as err:
        from ps019.errors import validation_problems

        raise InputError("exception " + "; ".join(validation_problems(err))) from None
    from ps019.gate.breakglass import sign_document

    signed = sign_document(exc, private_key)
    problem = _problem(signed, stack_ref, now, trusted_keys_of(gate_settings), settings)
    if problem:
        raise InputError(f"exception refused: {problem}")
    from ps019.gate.breakglass import _environment_tier

    # The record carries the tier of the stack it concerns (`evidence list --environment production` finds it).
    store.append(exception_record(signed, _environment_tier(stack_ref, environment_settings)), evidence_signer)
    return signed
