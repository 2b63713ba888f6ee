"""What a store holds per record and the facts derived from it: ``StoredRecord`` (the signed document, its envelope,
the store's indexed columns and raw bytes), the indexed facts every store keeps (``COLUMNS``, computed from the
signed document only), and the compact summary ``evidence list`` shows. No store logic; no checks
(``ps019.evidence.checks``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ps019.evidence.record import EvidenceRecord, format_utc

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class StoredRecord:
    """A record as the store holds it: the canonical document (as hashed) plus its DSSE envelope."""

    document: dict[str, Any]
    envelope: dict[str, Any]
    head: tuple[int, str] | None = field(default=None, compare=False)  # the store's recorded chain head, if any
    # the store's own indexed columns for this row (``COLUMNS`` names), when it has any: what queries filtered on
    columns: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    # the document and envelope exactly as the store holds them (text or bytes), when the back end has them: what
    # ``raw_digest`` hashes, so a reader can tell a row is byte-identical to one it verified before
    raw: tuple[str | bytes, ...] | None = field(default=None, compare=False, repr=False)

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

    @property
    def raw_digest(self) -> str | None:
        """SHA-256 over the row's stored bytes (document and envelope as the store holds them), or None."""
        return raw_digest(self.raw) if self.raw is not None else None

    @classmethod
    def from_json(cls, text: str | bytes) -> "StoredRecord":
        obj = json.loads(text)
        return cls(document=obj["record"], envelope=obj["envelope"])


def raw_digest(parts: tuple[str | bytes, ...]) -> str:
    """SHA-256 of a row's stored parts joined by NUL (C speed: a few microseconds for a record)."""
    h = hashlib.sha256()
    for i, part in enumerate(parts):
        if i:
            h.update(b"\0")
        h.update(part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part)
    return h.hexdigest()


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


# The indexed columns every store keeps per row, in the order the SQL stores select them. Each must equal what the
# signed document says; ``column_problems`` is the one place that decides.
COLUMNS = ("record_id", "chain_key", "sequence", "prev_hash", "hash", "kind", "stack", "environment", "change_class",
           "actor", "started_at", "break_glass", "has_violations")
_BOOL_COLUMNS = {"break_glass", "has_violations"}


def expected_columns(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What each indexed column must hold for this (signed) document."""
    facts = document_facts(doc)
    return {"record_id": facts.record_id, "chain_key": facts.chain_key, "sequence": facts.sequence,
            "prev_hash": doc.get("prev_hash") or "", "hash": doc.get("hash") or "", "kind": facts.kind,
            "stack": facts.stack, "environment": facts.environment, "change_class": facts.change_class,
            "actor": facts.actor, "started_at": facts.started_at, "break_glass": facts.break_glass,
            "has_violations": facts.has_violations}


def decoded_row(row: tuple, ncolumns: int) -> StoredRecord:
    """A SQL row (the ``COLUMNS`` then document, envelope) as a StoredRecord; an undecodable document or envelope
    becomes an empty one, which the checks then name, instead of an exception that hides which row it was."""
    columns = dict(zip(COLUMNS, row[:ncolumns]))
    return StoredRecord(document=_loads(row[ncolumns]), envelope=_loads(row[ncolumns + 1]), columns=columns,
                        raw=(row[ncolumns], row[ncolumns + 1]))



def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return {}


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
