"""The store interface shared by the sqlite, S3 and PostgreSQL back ends.

Imports run one way: the back ends (``sqlite_store``, ``pg_store``, ``s3_store``) depend on this module, never the
reverse; ``ps019.evidence.registry.open_store`` picks a back end by URL scheme.

Every store appends through :func:`seal`: the record is redacted against its ``forbidden_values`` hint, given its
chain fields (per-stack ``sequence`` and ``prev_hash``), hashed (SHA-256 over RFC 8785 canonical JSON without the
``hash`` field) and signed (DSSE around an in-toto Statement whose subject is the record). Back ends only decide how
to serialise appends per chain and how to keep rows immutable.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Mapping

import structlog

from ps019.errors import InputError
from ps019.evidence.record import EvidenceRecord, RecordKind, format_utc, hash_and_statement
from ps019.evidence.signing import Signer
from ps019.model import SECRET_PLACEHOLDER

log = structlog.get_logger(__name__)

GENESIS_HASH = "0" * 64
_MIN_SUBSTRING_SECRET = 4  # shorter secrets are redacted only where a whole string equals them


@dataclass(frozen=True)
class StoredRecord:
    """A record as the store holds it: the canonical document (as hashed) plus its DSSE envelope."""

    document: dict[str, Any]
    envelope: dict[str, Any]
    head: tuple[int, str] | None = field(default=None, compare=False)  # the store's recorded chain head, if any

    @property
    def record_id(self) -> str:
        return self.document["record_id"]

    @property
    def chain_key(self) -> str:
        return self.document.get("chain_key") or ""

    @property
    def sequence(self) -> int:
        return self.document.get("sequence") or 0

    @property
    def prev_hash(self) -> str:
        return self.document.get("prev_hash") or ""

    @property
    def hash(self) -> str:
        return self.document.get("hash") or ""

    @property
    def record(self) -> EvidenceRecord:
        return EvidenceRecord.model_validate(self.document)

    def to_json(self) -> str:
        return json.dumps({"record": self.document, "envelope": self.envelope}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "StoredRecord":
        obj = json.loads(text)
        return cls(document=obj["record"], envelope=obj["envelope"])


@dataclass(frozen=True)
class IndexFacts:
    """The columns every store indexes (derived from the record once, at append)."""

    record_id: str
    chain_key: str
    sequence: int
    kind: str
    stack: str
    environment: str
    change_class: str | None
    actor: str | None
    started_at: str
    break_glass: bool
    has_violations: bool


def index_facts(record: EvidenceRecord) -> IndexFacts:
    return IndexFacts(record_id=record.record_id, chain_key=record.chain_key or "", sequence=record.sequence or 0,
                      kind=record.kind.value, stack=record.stack_ref if record.stack else "",
                      environment=record.environment, change_class=record.change_class, actor=record.actor_id,
                      started_at=format_utc(record.started_at), break_glass=record.is_break_glass,
                      has_violations=record.has_violations)


_BREAK_GLASS_KINDS = {"break_glass_open", "break_glass_close", "break_glass_review"}


def document_facts(doc: Mapping[str, Any]) -> IndexFacts:
    """The same facts as :func:`index_facts`, read from a stored (already redacted) document without re-parsing
    it -- the indexed columns must come from the redacted form, never from the caller's object."""
    actor = (doc.get("actor") or {}).get("id")
    if actor is None:
        payload = doc.get("payload") or {}
        for attr in ("approver", "operator", "closed_by", "reviewer"):
            if isinstance(payload.get(attr), dict):
                actor = payload[attr].get("id")
                break
    bg = doc.get("break_glass") or {}
    return IndexFacts(
        record_id=doc["record_id"], chain_key=doc.get("chain_key") or "", sequence=doc.get("sequence") or 0,
        kind=doc["kind"], stack=f"{doc['organization']}/{doc['project']}/{doc['stack']}" if doc.get("stack") else "",
        environment=doc["environment"], change_class=doc.get("change_class"), actor=actor,
        started_at=doc["started_at"],
        break_glass=(doc["kind"] in _BREAK_GLASS_KINDS or doc.get("change_class") == "emergency"
                     or bool(bg.get("verified"))),
        has_violations=bool(doc.get("policy_results")))


@dataclass(frozen=True)
class Query:
    stack: str | None = None
    environment: str | None = None
    kind: str | None = None
    change_class: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    break_glass: bool | None = None
    with_violations: bool | None = None
    limit: int | None = None

    def matches(self, facts: IndexFacts) -> bool:
        """The reference semantics (stores without indexes filter with this)."""
        if self.stack and not _stack_matches(self.stack, facts.stack):
            return False
        if self.environment and facts.environment != self.environment:
            return False
        if self.kind and facts.kind != _kind_value(self.kind):
            return False
        if self.change_class and facts.change_class != self.change_class:
            return False
        if self.actor and facts.actor != self.actor:
            return False
        if self.since and facts.started_at < format_utc(self.since):
            return False
        if self.until and facts.started_at >= format_utc(self.until):
            return False
        if self.break_glass is not None and facts.break_glass != self.break_glass:
            return False
        if self.with_violations is not None and facts.has_violations != self.with_violations:
            return False
        return True


def _kind_value(kind: Any) -> str:
    return kind.value if isinstance(kind, RecordKind) else str(kind)


def _stack_matches(wanted: str, stack_ref: str) -> bool:
    """``org/project/stack`` matches exactly; a bare stack name matches any org/project."""
    return stack_ref == wanted if "/" in wanted else stack_ref.rsplit("/", 1)[-1] == wanted


class EvidenceStore(abc.ABC):
    """Append-only, per-stack hash-chained evidence records."""

    url: str

    @abc.abstractmethod
    def append(self, record: EvidenceRecord, signer: Signer) -> StoredRecord:
        """Assign sequence/prev_hash/hash, sign and append atomically. Raises StoreError when unreachable.
        Idempotent by record ID: appending a record whose ID is already stored returns the stored one."""

    @abc.abstractmethod
    def get(self, record_id: str) -> StoredRecord | None: ...

    @abc.abstractmethod
    def query(self, **filters: Any) -> list[StoredRecord]:
        """Newest first. Filters: stack, environment, kind, change_class, actor, since, until (half-open, on
        started_at), break_glass, with_violations, limit."""

    @abc.abstractmethod
    def iter_all(self, stack: str | None = None) -> Iterator[StoredRecord]:
        """Every record in chain order (per chain ascending sequence); ``stack`` = a chain key."""

    def summaries(self, **filters: Any) -> list[dict[str, Any]]:
        """``record_summary`` of each record ``query`` would return. The SQL stores override this with a projection
        of indexed columns, so that listing many records decodes none of them."""
        return [record_summary(s.document) for s in self.query(**filters)]

    @abc.abstractmethod
    def heads(self) -> dict[str, tuple[int, str]]:
        """The store's own record of each chain's head (sequence, hash), for truncation checks."""

    def contains(self, record_id: str) -> bool:
        return self.get(record_id) is not None

    def close(self) -> None:
        pass

    def __enter__(self) -> "EvidenceStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def seal(record: EvidenceRecord, signer: Signer, chain_key: str, prev_seq: int, prev_hash: str | None
         ) -> StoredRecord:
    """The common half of every append: redact, chain, hash, sign. Pure; the caller holds the chain's lock."""
    doc = redact_forbidden(record.document(), record.forbidden_values)
    doc["chain_key"] = chain_key
    doc["sequence"] = prev_seq + 1
    doc["prev_hash"] = prev_hash or GENESIS_HASH
    doc["hash"] = None
    try:
        doc["hash"], payload = hash_and_statement(doc)
    except ValueError as exc:  # e.g. an integer beyond 2**53 in a details field: RFC 8785 has no form for it
        raise InputError(f"evidence record {doc['record_id']} cannot be canonicalised (RFC 8785): {exc}") from exc
    envelope = signer.sign_envelope(payload)
    return StoredRecord(document=doc, envelope=envelope)


def validated_record(record: EvidenceRecord) -> EvidenceRecord:
    """A shallow copy with its chain key fixed (the caller's object is never modified). Fields were validated when
    the record was built; serialisation rejects anything assigned later with a wrong type."""
    if not isinstance(record, EvidenceRecord):
        raise InputError("append expects an EvidenceRecord")
    fresh = record.model_copy()
    fresh.forbidden_values = set(record.forbidden_values)
    fresh.chain_key = record.chain_key or record.default_chain_key()
    return fresh


def redact_forbidden(document: Any, forbidden: set[str] | frozenset[str]) -> Any:
    """Replace every occurrence of a known plaintext secret by ``[secret]`` (keys and values, substrings too for
    secrets of 4+ characters). Logs only the number of replacements, never the values."""
    values = sorted((v for v in forbidden if v), key=len, reverse=True)
    if not values:
        return document
    # fast exit (C speed): none of the values occurs in the serialised document, raw or JSON-escaped
    text = json.dumps(document, ensure_ascii=False)
    if not any(v in text or json.dumps(v, ensure_ascii=False)[1:-1] in text for v in values):
        return document
    count = [0]

    def clean(s: str) -> str:
        out = s
        for v in values:
            if out == v:
                count[0] += 1
                return SECRET_PLACEHOLDER
            if len(v) >= _MIN_SUBSTRING_SECRET and v in out:
                count[0] += out.count(v)
                out = out.replace(v, SECRET_PLACEHOLDER)
        return out

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return clean(node)
        if isinstance(node, dict):
            return {clean(k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result = walk(document)
    if count[0]:
        log.warning("evidence.secret_redacted", replacements=count[0])
    return result


def filters_to_query(filters: Mapping[str, Any]) -> Query:
    unknown = set(filters) - set(Query.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown evidence query filter(s): {', '.join(sorted(unknown))}")
    return Query(**{k: v for k, v in filters.items()})


SUMMARY_FIELDS = ("record_id", "kind", "started_at", "stack", "environment", "change_class", "outcome", "actor",
                  "violations", "break_glass", "chain", "hash")


def record_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The compact per-record view of ``ps019 evidence list`` (table and ``--format json``)."""
    facts = document_facts(doc)
    return {
        "record_id": doc.get("record_id"), "kind": doc.get("kind"), "started_at": doc.get("started_at"),
        "stack": facts.stack, "environment": doc.get("environment"), "change_class": doc.get("change_class"),
        "outcome": doc.get("outcome"), "actor": facts.actor or "",
        "violations": len(doc.get("policy_results") or []),
        "break_glass": (doc.get("break_glass") or {}).get("ref_id") or (doc.get("payload") or {}).get("grant_id"),
        "chain": f"{doc.get('chain_key')}#{doc.get('sequence')}", "hash": doc.get("hash"),
    }
