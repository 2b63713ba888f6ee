"""The evidence record: one per preview, update, blocked attempt and governance event.

A record is plain, versioned data (pydantic v2). The store assigns the chain fields (``sequence``, ``prev_hash``,
``hash``) when it appends; everything else is filled by the emitter. Secret values never belong here: resource inputs
are kept only as a SHA-256 digest of the *redacted* property bag (secrets replaced by ``[secret]``), see
:func:`inputs_digest`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Mapping, Union

import rfc8785
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from ps019.model import SECRET_PLACEHOLDER, redact  # noqa: F401 - part of this module's API
from ps019.digest import inputs_digest, wire_inputs_digest  # noqa: F401 - part of this module's API
from ps019.evidence.canonical import (  # noqa: F401 - canonical_bytes / record_hash are part of this module's API
    _MAX_SAFE_INT, _SURROGATE, _NeedsReference, _fast_dumps, _jcs_ready, canonical_bytes, record_hash)
from ps019.evidence.signing import statement

SCHEMA_VERSION = "1.0"
GOVERNANCE_PREFIX = "ps019/governance/"
GOVERNANCE_CHAIN = GOVERNANCE_PREFIX + "-"  # chain key for governance events not tied to one stack
# Governance records live in a chain of their own per stack (GOVERNANCE_PREFIX + org/project/stack): short chains
# that lookups read whole and verify end to end, so no column edit can hide a close, a review or an exception.
GOVERNANCE_KINDS = frozenset({"approval", "break_glass_open", "break_glass_close", "break_glass_review",
                              "exception"})


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return value.astimezone(timezone.utc)


def format_utc(value: datetime) -> str:
    """Fixed-width UTC form, so that stored timestamps sort and compare as strings."""
    return _to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc), PlainSerializer(format_utc, return_type=str, when_used="json")]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RecordKind(str, enum.Enum):
    PREVIEW = "preview"
    UPDATE = "update"
    BLOCKED = "blocked"
    APPROVAL = "approval"
    BREAK_GLASS_OPEN = "break_glass_open"
    BREAK_GLASS_CLOSE = "break_glass_close"
    BREAK_GLASS_REVIEW = "break_glass_review"
    EXCEPTION = "exception"
    VERIFICATION = "verification"
    # A pass driven by ps019's offline engine stand-in (`ps019 analyze`, `ps019 up`): nothing was deployed. Kinds of
    # their own, so that no query, count or check for deployments (kind "update", "preview", "blocked") ever
    # includes one; ``EvidenceRecord.offline`` says how the run was driven.
    OFFLINE_PREVIEW = "offline_preview"
    OFFLINE_UPDATE = "offline_update"
    OFFLINE_BLOCKED = "offline_blocked"

    @property
    def is_deployment(self) -> bool:
        return self in (RecordKind.PREVIEW, RecordKind.UPDATE, RecordKind.BLOCKED)

    @property
    def is_offline(self) -> bool:
        return self.value.startswith(OFFLINE_KIND_PREFIX)


OFFLINE_KIND_PREFIX = "offline_"


class _Model(BaseModel):
    # NaN and infinities stay floats in the JSON-mode dump (pydantic's default turns them into null, losing them);
    # canonicalisation then records them in an escaped, marked form (see escape_uncanonical).
    model_config = ConfigDict(extra="forbid", use_enum_values=False, validate_assignment=False,
                              ser_json_inf_nan="constants")


class Identity(_Model):
    """Who deployed (or approved, or operated a grant) and how that was established."""

    id: str = Field(description="STS ARN, CI OIDC subject, or local user name")
    kind: Literal["aws-sts", "ci-oidc", "ci-env", "local-user", "signing-key", "unknown"] = "unknown"
    verified: bool = False
    verified_by: str | None = Field(None, description="how it was verified, e.g. 'sts:GetCallerIdentity'")
    account: str | None = None
    role: str | None = None


class CiRun(_Model):
    provider: str = Field(description="github-actions, gitlab-ci, buildkite, jenkins, local, ...")
    run_url: str | None = None
    run_id: str | None = None
    ref: str | None = None
    commit: str | None = None
    workflow: str | None = None


class PolicyPackRef(_Model):
    name: str
    version: str
    code_digest: str | None = Field(None, description="sha256 over the pack's code")


class Artifact(_Model):
    git_commit: str | None = None
    source_digest: str | None = Field(None, description="sha256 of the program's source tree")
    policy_pack: PolicyPackRef | None = None
    iam_data_version: str | None = None
    update_plan_digest: str | None = Field(None, description="sha256 of the `pulumi preview --save-plan` file")


class ResourceChange(_Model):
    urn: str
    type: str
    op: str | None = Field(None, description="create | update | replace | delete | same | unknown")
    inputs_digest: str | None = Field(None, description="sha256 of the redacted inputs in the engine's wire encoding "
                                                        "(see ps019.evidence.record.inputs_digest)")


class PolicyResult(_Model):
    control_id: str
    level: str
    severity: str | None = None
    urn: str | None = None
    resource_type: str | None = None
    message: str
    waived_by: str | None = None


class VerifiedReference(_Model):
    """An approval, break-glass grant or exception the run presented, and what was verified about it."""

    ref_id: str
    kind: Literal["approval", "break_glass", "exception", "change_request"]
    presented: bool = True
    verified: bool = False
    failures: list[str] = Field(default_factory=list)
    identity: str | None = Field(None, description="approver / operator identity as verified")
    role: str | None = None
    keyid: str | None = None
    expires_at: UtcDatetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)


# --- governance payloads -------------------------------------------------------------------------------------------


class ApprovalPayload(_Model):
    event: Literal["approval"] = "approval"
    change_request_id: str
    ticket: str | None = None
    change_class: str | None = None
    approver: Identity
    approved_at: UtcDatetime
    artifact_commit: str | None = None
    update_plan_digest: str | None = None
    stacks: list[str] = Field(default_factory=list)
    signature_keyid: str | None = None
    expires_at: UtcDatetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class BreakGlassOpenPayload(_Model):
    event: Literal["break_glass_open"] = "break_glass_open"
    grant_id: str
    operator: Identity
    reason: str
    incident: str
    opened_at: UtcDatetime
    expires_at: UtcDatetime
    waived_controls: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class BreakGlassClosePayload(_Model):
    event: Literal["break_glass_close"] = "break_glass_close"
    grant_id: str
    closed_by: Identity
    closed_at: UtcDatetime
    notes: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class BreakGlassReviewPayload(_Model):
    event: Literal["break_glass_review"] = "break_glass_review"
    grant_id: str
    reviewer: Identity
    reviewed_at: UtcDatetime
    notes: str | None = None
    links: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class ExceptionPayload(_Model):
    event: Literal["exception"] = "exception"
    exception_id: str
    control_id: str
    resource: str = Field(description="URN or URN pattern")
    reason: str
    approved_by: list[Identity] = Field(default_factory=list)
    expires_at: UtcDatetime
    details: dict[str, Any] = Field(default_factory=dict)


class VerificationPayload(_Model):
    event: Literal["verification"] = "verification"
    against_record_id: str | None = Field(None, description="the update record the state was compared with")
    matched: bool
    missing: list[str] = Field(default_factory=list, description="URNs in the record, absent from the state")
    unexpected: list[str] = Field(default_factory=list, description="URNs in the state, absent from the record")
    changed: list[str] = Field(default_factory=list, description="URNs whose input digest differs")
    state_digest: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class EscapedValue(_Model):
    """A value that RFC 8785 cannot represent as it was given, kept losslessly in an escaped form (never dropped)."""

    path: str = Field(description="JSON Pointer (RFC 6901) of the escaped value, or of the escaped key, in the record")
    reason: str = Field(description="why it was escaped, e.g. 'invalid UTF-8 byte 0xff', 'NaN'")
    encoding: Literal["json-string", "json-string-key", "number-text"] = Field(
        description="json-string: the text between the quotes of a JSON string literal (json.loads('\"' + value + "
                    "'\"') gives the original); json-string-key: the same, for an object key; number-text: the "
                    "number as text (NaN, Infinity, -Infinity or all digits of an integer beyond 2**53)")


class Recording(_Model):
    """How the record came to be written: where the store setting came from, production defaults that were relaxed
    by an explicit setting, and why a run ended without its normal end (engine Cancel, signal, internal error)."""

    store_source: str | None = Field(None, description="pack-config | environment | default | cli")
    relaxed: list[str] = Field(default_factory=list,
                               description="explicit settings that relaxed a production default, e.g. "
                                           "'evidence.outage_level=advisory'")
    interrupted_by: str | None = Field(None, description="what ended the run before its normal end, e.g. "
                                                         "'engine Cancel', 'SIGINT'")
    internal_errors: list[str] = Field(default_factory=list,
                                       description="PS019-PACK-000 failures of this run (the gate or the adapter "
                                                   "crashed; the run failed closed)")
    # Present only when set (records written before these fields keep their exact form).
    stack_facts: dict[str, str] = Field(
        default_factory=dict, exclude_if=lambda v: not v,
        description="where each stack fact came from: field (organization, project, stack, dry_run, config) -> "
                    "ConfigureStack | environment (PULUMI_* variables, an engine older than the field) | default")
    ignored: list[str] = Field(
        default_factory=list, exclude_if=lambda v: not v,
        description="markers the pack refused to honour, e.g. an offline-run marker in a run started by a real "
                    "engine")


class OfflineRun(_Model):
    """The run was driven by ps019's offline engine stand-in, not by the Pulumi CLI: no deployment happened. Set only
    when the pack could tell (the stand-in's marker, honoured only when the engine address the pack was started with
    is the stand-in's, so a marker set in a real ``pulumi up`` cannot hide a deployment)."""

    engine: str = Field(description="what drove the run, e.g. 'ps019 0.1.0 engine stand-in (ps019 up)'")
    source: str | None = Field(None, description="state (a stack export) | program (run under mocks)")
    placeholders: dict[str, list[str]] = Field(
        default_factory=dict,
        description="values the program run answered offline, by kind (invokes, outputs, stack references, "
                    "components): deterministic stand-ins, not what the cloud returned")


GovernancePayload = Annotated[
    Union[ApprovalPayload, BreakGlassOpenPayload, BreakGlassClosePayload, BreakGlassReviewPayload, ExceptionPayload,
          VerificationPayload],
    Field(discriminator="event"),
]


class EvidenceRecord(_Model):
    """One evidence record. See docs/evidence.md for the field reference."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    record_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    kind: RecordKind
    started_at: UtcDatetime = Field(default_factory=utcnow)
    ended_at: UtcDatetime | None = None

    organization: str = ""
    project: str = ""
    stack: str = ""
    environment: str = Field("unknown", description="tier: production | staging | development | unknown")
    change_class: str | None = Field(None, description="standard | normal | emergency (None when not classified)")
    outcome: str | None = Field(None, description="previewed | succeeded | failed | blocked | interrupted | "
                                                  "recorded")
    blocked_reason: str | None = None

    actor: Identity | None = None
    ci: CiRun | None = None
    artifact: Artifact | None = None
    resources: list[ResourceChange] = Field(default_factory=list)
    policy_results: list[PolicyResult] = Field(default_factory=list)
    change_request: str | None = Field(None, description="ticket / change request ID")
    approvals: list[VerifiedReference] = Field(default_factory=list)
    break_glass: VerifiedReference | None = None
    exceptions: list[VerifiedReference] = Field(default_factory=list)
    rollback_plan: str | None = None
    monitoring_plan: str | None = None
    links: dict[str, str] = Field(default_factory=dict, description="e.g. preview_record_id")
    payload: GovernancePayload | None = None
    # Present only when set (records without them keep the exact form of schema 1.0 records written before).
    recording: Recording | None = Field(None, exclude_if=lambda v: v is None)
    offline: OfflineRun | None = Field(None, exclude_if=lambda v: v is None,
                                       description="set on records of offline runs (kinds offline_*): not a "
                                                   "deployment")
    escaped: list[EscapedValue] = Field(default_factory=list, exclude_if=lambda v: not v,
                                        description="values kept in an escaped form because RFC 8785 cannot "
                                                    "represent them as given (set when the record is sealed)")

    # Chain fields, assigned by the store on append (hash covers every field above plus sequence and prev_hash).
    chain_key: str | None = None
    sequence: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    # Emitter hint, never stored: plaintext secrets known to the emitter; append redacts any occurrence.
    forbidden_values: set[str] = Field(default_factory=set, exclude=True, repr=False,
                                       json_schema_extra={"readOnly": True})

    @model_validator(mode="after")
    def _offline_is_marked_both_ways(self) -> "EvidenceRecord":
        # An offline run's record always says so in its kind (what every deployment query filters on) and in its
        # ``offline`` field; neither without the other.
        if self.kind.is_offline and self.offline is None:
            raise ValueError(f"a record of kind {self.kind.value} must say how the offline run was driven (offline)")
        if self.offline is not None and not self.kind.is_offline:
            raise ValueError(f"a record of kind {self.kind.value} cannot carry offline: offline runs have kinds "
                             f"{OFFLINE_KIND_PREFIX}*")
        return self

    # --- derived facts (indexed by the stores) ---
    @property
    def stack_ref(self) -> str:
        return f"{self.organization}/{self.project}/{self.stack}"

    def default_chain_key(self) -> str:
        if not self.stack:
            return GOVERNANCE_CHAIN
        return GOVERNANCE_PREFIX + self.stack_ref if self.kind.value in GOVERNANCE_KINDS else self.stack_ref

    @property
    def actor_id(self) -> str | None:
        if self.actor is not None:
            return self.actor.id
        p = self.payload
        for attr in ("approver", "operator", "closed_by", "reviewer"):
            ident = getattr(p, attr, None)
            if ident is not None:
                return ident.id
        return None

    @property
    def is_break_glass(self) -> bool:
        return (
            self.kind in (RecordKind.BREAK_GLASS_OPEN, RecordKind.BREAK_GLASS_CLOSE, RecordKind.BREAK_GLASS_REVIEW)
            or self.change_class == "emergency"
            or (self.break_glass is not None and self.break_glass.verified)
        )

    @property
    def has_violations(self) -> bool:
        return bool(self.policy_results)

    def document(self) -> dict[str, Any]:
        """The record as stored and hashed (JSON types; the ``forbidden_values`` hint is dropped). Object keys that
        hold lone surrogates are escaped and marked here (pydantic would silently turn them into U+FFFD); values that
        RFC 8785 cannot represent are escaped when the document is canonicalised (:func:`escape_uncanonical`)."""
        record, marks = _escape_surrogate_keys(self)
        doc = record.model_dump(mode="json")
        if marks:
            doc["escaped"] = list(doc.get("escaped") or []) + marks
        return doc


_FREE_FORM_FIELDS = ("approvals", "break_glass", "exceptions", "payload", "links", "recording", "offline")


def _escape_surrogate_keys(record: "EvidenceRecord") -> tuple["EvidenceRecord", list[dict[str, str]]]:
    """The record with every object key holding a lone surrogate escaped (json-string-key), and the marks. Only the
    free-form fields can have such keys; the per-resource lists have fixed keys and are not walked."""
    marks: list[dict[str, str]] = []
    update = {}
    for name in _FREE_FORM_FIELDS:
        value = getattr(record, name)
        new = _with_escaped_keys(value, f"/{name}", marks)
        if new is not value:
            update[name] = new
    return (record.model_copy(update=update), marks) if marks else (record, marks)


def _with_escaped_keys(node: Any, path: str, marks: list[dict[str, str]]) -> Any:
    if isinstance(node, BaseModel):
        update = {}
        for name in type(node).model_fields:
            value = getattr(node, name)
            new = _with_escaped_keys(value, f"{path}/{name}", marks)
            if new is not value:
                update[name] = new
        return node.model_copy(update=update) if update else node
    if isinstance(node, dict):
        out, changed = {}, False
        for key, value in node.items():
            if type(key) is str and not key.isascii() and _SURROGATE.search(key):
                escaped_key = _escape_text(key)
                marks.append({"path": f"{path}/{_pointer_token(escaped_key)}", "reason": _surrogate_reason(key),
                              "encoding": "json-string-key"})
                key, changed = escaped_key, True
            new = _with_escaped_keys(value, f"{path}/{_pointer_token(key)}", marks)
            changed = changed or new is not value
            out[key] = new
        return out if changed else node
    if isinstance(node, (list, tuple)):
        items = [_with_escaped_keys(v, f"{path}/{i}", marks) for i, v in enumerate(node)]
        return items if any(a is not b for a, b in zip(items, node)) else node
    return node


def escape_uncanonical(document: dict[str, Any]) -> bool:
    """In place: replace every value (and object key) that RFC 8785 cannot represent as given by a lossless escaped
    form and list it under ``escaped`` (see :class:`EscapedValue`); returns whether anything was escaped.

    What it escapes: text with lone surrogates (an invalid UTF-8 byte in an environment variable, e.g. in
    ``GITHUB_RUN_ID``, reaches Python as one), NaN and infinities, integers beyond 2**53. A record holding such an
    input is recorded, marked, never dropped."""
    marks: list[dict[str, str]] = []

    def walk(node: Any, path: str) -> Any:
        t = type(node)
        if t is str:
            if node.isascii() or not _SURROGATE.search(node):
                return node
            marks.append({"path": path, "reason": _surrogate_reason(node), "encoding": "json-string"})
            return _escape_text(node)
        if t is dict:
            out = {}
            for key, value in node.items():
                if type(key) is str and not key.isascii() and _SURROGATE.search(key):
                    escaped_key = _escape_text(key)
                    marks.append({"path": f"{path}/{_pointer_token(escaped_key)}", "reason": _surrogate_reason(key),
                                  "encoding": "json-string-key"})
                    key = escaped_key
                out[key] = value if path == "" and key == "escaped" else walk(value, f"{path}/{_pointer_token(key)}")
            return out
        if t is list:
            return [walk(v, f"{path}/{i}") for i, v in enumerate(node)]
        if t is float and not math.isfinite(node):
            marks.append({"path": path, "reason": "not a finite number", "encoding": "number-text"})
            return "NaN" if node != node else ("Infinity" if node > 0 else "-Infinity")
        if t is int and not -_MAX_SAFE_INT <= node <= _MAX_SAFE_INT:
            marks.append({"path": path, "reason": "integer beyond 2**53 (RFC 8785 has no exact form for it)",
                          "encoding": "number-text"})
            return str(node)
        return node

    result = walk(document, "")
    if not marks:
        return False
    result["escaped"] = list(document.get("escaped") or []) + marks
    document.clear()
    document.update(result)
    return True


def _escape_text(text: str) -> str:
    body = json.dumps(text, ensure_ascii=False)[1:-1]  # quotes, backslashes and control characters escaped
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)


def _surrogate_reason(text: str) -> str:
    found = _SURROGATE.findall(text)
    raw = [ord(c) - 0xDC00 for c in found if 0xDC80 <= ord(c) <= 0xDCFF]  # surrogateescape: one per invalid byte
    if len(raw) == len(found):
        return "invalid UTF-8 byte(s) " + " ".join(f"0x{b:02x}" for b in raw[:8]) + (" …" if len(raw) > 8 else "")
    return "lone UTF-16 surrogate(s) " + " ".join(f"U+{ord(c):04X}" for c in found[:8])


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def canonical_document_bytes(document: dict[str, Any]) -> bytes:
    """:func:`canonical_bytes` of a record document, escaping (in place, marked) what RFC 8785 cannot represent."""
    try:
        return canonical_bytes(document)
    except ValueError:
        if not escape_uncanonical(document):
            raise
        return canonical_bytes(document)


def hash_and_statement(document: dict[str, Any]) -> tuple[str, bytes]:
    """(record hash, canonical in-toto Statement bytes) for a sealed document, normalising it only once. Equal to
    ``record_hash(doc)`` and ``canonical_bytes(statement(record_id, hash, doc))``. A value RFC 8785 cannot represent
    is escaped in ``document`` itself first (:func:`escape_uncanonical`), so what is stored is what was hashed."""
    try:
        ready = _jcs_ready({k: v for k, v in document.items() if k != "hash"})
    except _NeedsReference:
        try:
            digest = record_hash(document)
        except ValueError:  # not representable as given: escape in place (marked), then hash that
            if not escape_uncanonical(document):
                raise
            return hash_and_statement(document)
        return digest, rfc8785.dumps(statement(document["record_id"], digest, {**document, "hash": digest}))
    digest = hashlib.sha256(_fast_dumps(ready)).hexdigest()
    ready["hash"] = digest
    return digest, _fast_dumps(statement(ready["record_id"], digest, ready))


def resource_change(view: Any, op: str | None = None) -> ResourceChange:
    """A :class:`ResourceChange` from a ``ps019.model.ResourceView``."""
    digest = getattr(view, "inputs_digest", None) or inputs_digest(view.props, view.secret_paths)
    return ResourceChange(urn=view.urn, type=view.type, op=op, inputs_digest=digest)


def policy_result(diag: Any) -> PolicyResult:
    """A :class:`PolicyResult` from a ``ps019.model.Diagnostic``."""
    return PolicyResult(control_id=diag.control_id, level=getattr(diag.level, "value", str(diag.level)),
                        severity=getattr(diag.severity, "value", diag.severity), urn=diag.urn,
                        resource_type=diag.resource_type or None, message=diag.message, waived_by=diag.waived_by)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the record as published in docs/evidence-record.schema.json."""
    schema = EvidenceRecord.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://ps019.dev/evidence/change-record/v1/schema.json"
    schema["title"] = "ps019 evidence record"
    return schema
