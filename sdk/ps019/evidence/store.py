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
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping

import structlog

from ps019.errors import InputError, IntegrityError
from ps019.evidence.record import (GOVERNANCE_KINDS, GOVERNANCE_PREFIX, EvidenceRecord, RecordKind, format_utc,
                                   hash_and_statement)
from ps019.evidence.integrity import document_problem, short
from ps019.evidence.redact import redact_forbidden  # noqa: F401 - part of this module's API (seal uses it)
from ps019.evidence.signing import Signer
from ps019.model import SECRET_PLACEHOLDER

log = structlog.get_logger(__name__)

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


def column_problems(doc: Mapping[str, Any], columns: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(column, reason) for every indexed column that disagrees with the document (empty when all agree)."""
    if not columns:
        return []
    try:
        want = expected_columns(doc)
    except (KeyError, TypeError, AttributeError):
        return [("document", "stored document is not an evidence record")]
    out = []
    for name, value in columns.items():
        if name not in want:
            continue
        expected = want[name]
        got = bool(value) if name in _BOOL_COLUMNS and value is not None else value
        if name == "sequence" and got is not None:
            got = int(got)
        if got != expected and not (got in (None, "") and expected in (None, "")):
            out.append((name, f"indexed column {name} is {short(got)} but the signed document says {short(expected)}"))
    return out


def row_problems(stored: "StoredRecord", keys: Mapping[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(code, field, reason) for everything wrong with one row: the document against its envelope (and signature,
    with ``keys``), then every indexed column against the document."""
    problems = []
    doc_problem = document_problem(stored.document, stored.envelope, keys)
    if doc_problem:
        problems.append(doc_problem)
    if isinstance(stored.document, Mapping):
        problems += [("column", name, reason) for name, reason in column_problems(stored.document, stored.columns)]
    return problems


def row_label(stored: "StoredRecord") -> str:
    for source in (stored.document, stored.columns):
        if isinstance(source, Mapping) and source.get("record_id"):
            return str(source["record_id"])
    return "<unnamed row>"


def checked(stored: "StoredRecord", keys: Mapping[str, Any] | None = None) -> "StoredRecord":
    """``stored`` if its document is what was signed and its columns agree with it; otherwise IntegrityError naming
    the record and the field (one line). Every store read passes through here."""
    problems = row_problems(stored, keys)
    if problems:
        _code, name, reason = problems[0]
        more = f" (+{len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise IntegrityError(f"evidence record {row_label(stored)}: field {name}: {reason}{more}; refusing to use "
                             "it -- run `ps019 evidence verify` for every problem in the store")
    return stored


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
    started_from: str | None = None  # inclusive floor on started_at in its stored text form (the window of a limit)

    def matches(self, facts: IndexFacts) -> bool:
        """The reference semantics (stores without indexes filter with this)."""
        if self.stack and not _stack_matches(self.stack, facts.stack):
            return False
        if self.started_from and facts.started_at < self.started_from:
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
    """Append-only, per-stack hash-chained evidence records.

    Reads that select or count records (``query``, ``summaries``) never trust the store's own index columns. Two
    ways, chosen by the reader:

    * with a verified index (:meth:`use_verified_index`, what the auditor's CLI uses; ``ps019.evidence.verified``),
      answers come from records this reader has verified (signature, hash, chain link, columns), kept outside the
      store and brought up to the store's heads before every answer; the store's own columns are cross-checked
      against them, so an edited filter column is reported instead of silently hiding or adding a record;
    * without one (the pack), every row returned is checked against its signed document (:func:`checked`; with
      :meth:`trust`, the signature as well), and governance records (grants, closes, reviews, exceptions,
      approvals) are read from their own chains, verified end to end (docs/evidence.md).

    After a successful append, a store opened with checkpoint settings publishes a signed checkpoint of the chain
    it extended to its witness (``ps019.evidence.witness``)."""

    url: str
    trusted_keys: Mapping[str, Any] | None = None
    verified_index: Any = None  # ps019.evidence.verified.VerifiedIndex (answers complete, verified queries)
    witness: Any = None  # ps019.evidence.witness.Witness (publishes and reads signed checkpoints)

    def trust(self, keys: Mapping[str, Any] | None) -> "EvidenceStore":
        """Check every signature of what ``query`` returns against ``keys`` (keyid -> Ed25519 public key)."""
        self.trusted_keys = dict(keys) if keys is not None else None
        return self

    def use_verified_index(self, index: Any) -> "EvidenceStore":
        """Answer ``query``/``summaries`` from ``index`` (a ``VerifiedIndex``), refreshed against this store."""
        self.verified_index = index
        return self

    @abc.abstractmethod
    def append(self, record: EvidenceRecord, signer: Signer) -> StoredRecord:
        """Assign sequence/prev_hash/hash, sign and append atomically. Raises StoreError when unreachable.
        Idempotent by record ID: appending a record whose ID is already stored returns the stored one."""

    def _appended(self, stored: list[StoredRecord], signer: Signer) -> None:
        """Every back end calls this after its append committed: the witness publishes a checkpoint. Never raises
        (the record is stored; a checkpoint that could not be published is logged and the next one covers it)."""
        if self.witness is not None and stored:
            self.witness.appended(self, stored, signer)

    @abc.abstractmethod
    def get(self, record_id: str) -> StoredRecord | None:
        """The row stored under ``record_id`` with its columns, unchecked (``show`` reports its problems)."""

    @abc.abstractmethod
    def _select(self, q: "Query") -> list[StoredRecord]:
        """The back end's indexed selection: rows (with ``columns``) whose columns match ``q``, newest first."""

    def select_rows(self, q: "Query", *, documents: bool = False) -> list[tuple] | None:
        """Rows whose indexed columns match ``q``, newest first, as the store holds them, nothing decoded: each a
        tuple of the ``COLUMNS`` values (booleans as 0/1 or bool), then, with ``documents``, the document and
        envelope text. None for a back end without indexed columns (S3)."""
        return None

    def query(self, **filters: Any) -> list[StoredRecord]:
        """Newest first. Filters: stack, environment, kind, change_class, actor, since, until (half-open, on
        started_at), break_glass, with_violations, limit. Every row is checked (IntegrityError names the record and
        field on disagreement); governance kinds come from their verified chains."""
        q = filters_to_query(filters)
        if self.verified_index is not None:
            return self.verified_index.query(self, q)
        if q.kind and _kind_value(q.kind) in GOVERNANCE_KINDS:
            return self._governance(q)
        return [checked(r, self.trusted_keys) for r in self._select(q)]

    def _governance(self, q: "Query") -> list[StoredRecord]:
        found: dict[str, StoredRecord] = {}
        for chain in self._governance_chains(q.stack):
            for stored in verified_chain(self.iter_all(chain), self.trusted_keys, self.heads().get(chain), chain,
                                         self.witness_anchor(chain)):
                if q.matches(document_facts(stored.document)):
                    found[stored.record_id] = stored
        # records written before governance chains existed live in their stack's chain: indexed and checked
        for stored in self._select(replace(q, limit=None)):
            if not stored.chain_key.startswith(GOVERNANCE_PREFIX):
                found.setdefault(row_label(stored), checked(stored, self.trusted_keys))
        rows = sorted(found.values(), key=lambda r: (r.document.get("started_at") or "", r.chain_key, r.sequence),
                      reverse=True)
        return rows[: q.limit] if q.limit else rows

    def witness_anchor(self, chain: str) -> tuple[int, str] | None:
        """The latest signed checkpoint of ``chain`` the witness can read (sequence, hash), or None."""
        if self.witness is None:
            return None
        return self.witness.anchor(chain, self.trusted_keys)

    def _governance_chains(self, stack: str | None) -> list[str]:
        if stack and "/" in stack:
            return [GOVERNANCE_PREFIX + stack]
        chains = [c for c in self.chain_keys() if c.startswith(GOVERNANCE_PREFIX)]
        if stack:
            chains = [c for c in chains if c.rsplit("/", 1)[-1] == stack]
        return sorted(chains)

    def chain_keys(self) -> list[str]:
        """Every chain with at least one record (or a recorded head)."""
        return sorted(self.heads())

    @abc.abstractmethod
    def iter_all(self, stack: str | None = None) -> Iterator[StoredRecord]:
        """Every record in chain order (per chain ascending sequence); ``stack`` = a chain key. Rows carry their
        ``columns``; nothing is checked here (``verify`` reports every problem)."""

    def iter_chain(self, chain: str, after: int = 0) -> Iterator[StoredRecord]:
        """The records of ``chain`` with sequence > ``after``, ascending, unchecked (back ends seek directly)."""
        return (r for r in self.iter_all(chain) if r.sequence > after)

    def record_at(self, chain: str, sequence: int) -> StoredRecord | None:
        """The row at ``sequence`` of ``chain``, unchecked, or None."""
        for stored in self.iter_chain(chain, sequence - 1):
            return stored if stored.sequence == sequence else None
        return None

    def summaries(self, **filters: Any) -> list[dict[str, Any]]:
        """``record_summary`` of each record ``query`` returns (so each summary comes from a checked document); with
        a verified index, straight from the verified facts (no document is decoded)."""
        if self.verified_index is not None:
            return self.verified_index.summaries(self, filters_to_query(filters))
        return [record_summary(s.document) for s in self.query(**filters)]

    @abc.abstractmethod
    def heads(self) -> dict[str, tuple[int, str]]:
        """The store's own record of each chain's head (sequence, hash), for truncation checks."""

    def contains(self, record_id: str) -> bool:
        return self.get(record_id) is not None

    def ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Record IDs that start with ``prefix`` (at most ``limit``; two are enough to tell "ambiguous"). The
        default reads the summaries; a store may answer from its index instead."""
        found: list[str] = []
        for summary in self.summaries():
            record_id = str(summary.get("record_id") or "")
            if record_id.startswith(prefix):
                found.append(record_id)
                if len(found) >= limit:
                    break
        return found

    def close(self) -> None:
        if self.verified_index is not None:
            self.verified_index.close()

    def __enter__(self) -> "EvidenceStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def decoded_row(row: tuple, ncolumns: int) -> StoredRecord:
    """A SQL row (the ``COLUMNS`` then document, envelope) as a StoredRecord; an undecodable document or envelope
    becomes an empty one, which the checks then name, instead of an exception that hides which row it was."""
    columns = dict(zip(COLUMNS, row[:ncolumns]))
    return StoredRecord(document=_loads(row[ncolumns]), envelope=_loads(row[ncolumns + 1]), columns=columns,
                        raw=(row[ncolumns], row[ncolumns + 1]))



def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {}


def link_problem(last: tuple[int, str], stored: StoredRecord) -> tuple[str, str] | None:
    """(code, reason) when ``stored`` does not directly extend a chain whose last record is ``last`` (seq, hash)."""
    prev_seq, prev_hash = last
    seq = stored.sequence
    if seq > prev_seq + 1:
        missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
        return "gap", f"sequence gap: record(s) {missing} missing (deleted?)"
    if seq != prev_seq + 1:
        return "reordered", f"sequence {seq} after {prev_seq}: records reordered or duplicated"
    if stored.prev_hash != prev_hash:
        return "fork", "prev_hash does not equal the previous record's hash (chain forked or a record replaced)"
    return None


def head_problem(chain: str, last: tuple[int, str], head: tuple[int, str] | None) -> tuple[str, str] | None:
    """(code, reason) when a chain read to its end (last = (seq, hash)) disagrees with the store's recorded head."""
    got_seq, got_hash = last
    head_seq, head_hash = head if head else (0, GENESIS_HASH)
    if got_seq < head_seq:
        return "truncated", (f"chain {chain} ends at sequence {got_seq} but the store's head is {head_seq}: "
                             "tail truncated")
    if got_seq > head_seq:
        return "head_rewound", (f"chain {chain} continues to sequence {got_seq} past the store's recorded head "
                                f"{head_seq}: the head was rewound or deleted")
    if head_seq and got_hash != head_hash:
        return "fork", f"chain {chain}: last record's hash differs from the store's recorded head"
    return None


def verified_chain(rows: Iterable[StoredRecord], keys: Mapping[str, Any] | None, head: tuple[int, str] | None,
                   chain: str, anchor: tuple[int, str] | None = None) -> list[StoredRecord]:
    """One whole chain, every row checked and linked, ending at the recorded head -- or IntegrityError naming the
    first record (or the chain) that breaks it. What governance lookups are built on: a record cannot be removed
    from such a chain, by any column edit, without a gap, a fork or a head mismatch. ``anchor``: the latest signed
    checkpoint of the chain (sequence, hash); a chain that ends before it, or differs at it, was rolled back."""
    out: list[StoredRecord] = []
    last = (0, GENESIS_HASH)
    for stored in rows:
        checked(stored, keys)
        if stored.chain_key != chain:
            raise IntegrityError(f"evidence record {stored.record_id}: field chain_key: read from chain {chain} but "
                                 f"signed for chain {stored.chain_key}; refusing to use chain {chain}")
        problem = link_problem(last, stored)
        if problem:
            raise IntegrityError(f"evidence record {stored.record_id}: field sequence: {problem[1]}; refusing to "
                                 f"use chain {chain}")
        last = (stored.sequence, stored.hash)
        out.append(stored)
    problem = head_problem(chain, last, head)
    if problem:
        raise IntegrityError(f"evidence chain {chain}: {problem[1]}; refusing to use it")
    problem = anchor_problem(chain, last[0], out[anchor[0] - 1].hash if anchor and 0 < anchor[0] <= len(out) else None,
                             anchor)
    if problem:
        raise IntegrityError(f"evidence chain {chain}: {problem}; refusing to use it")
    return out


def anchor_problem(chain: str, last_seq: int, hash_at_anchor: str | None, anchor: tuple[int, str] | None
                   ) -> str | None:
    """Why a chain that ends at ``last_seq`` (holding ``hash_at_anchor`` at the anchor's sequence) is not consistent
    with a signed checkpoint ``anchor`` (sequence, hash), or None."""
    if not anchor:
        return None
    seq, digest = anchor
    if last_seq < seq:
        return (f"a signed checkpoint attests sequence {seq} of chain {chain} but the store ends at sequence "
                f"{last_seq}: truncated, head rewound or rolled back")
    if hash_at_anchor != digest:
        return (f"the record at sequence {seq} of chain {chain} differs from the one a signed checkpoint attests: "
                "the chain was rewritten (rollback or restored backup)")
    return None


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
