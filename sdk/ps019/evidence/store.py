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
import time
from contextlib import closing, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ContextManager, Iterator, Mapping

import structlog

from ps019.errors import InputError, IntegrityError
from ps019.evidence.checks import (anchor_problem, checked, column_problems, head_problem,  # noqa: F401 - API
                                   link_problem, row_label, row_problems, verified_chain)
from ps019.evidence.record import (GOVERNANCE_KINDS, GOVERNANCE_PREFIX, EvidenceRecord, RecordKind, format_utc,
                                   hash_and_statement)
from ps019.evidence.rows import (COLUMNS, GENESIS_HASH, SUMMARY_FIELDS, IndexFacts, StoredRecord,  # noqa: F401 - API
                                 decoded_row, document_facts, expected_columns, index_facts, raw_digest,
                                 record_summary)
from ps019.evidence.redact import redact_forbidden  # noqa: F401 - part of this module's API (seal uses it)
from ps019.evidence.signing import Signer

log = structlog.get_logger(__name__)

# How long after its run started a record may reach the store and still be found by ``chain_since``: a pass that
# runs longer, or a spooled record flushed later, than this may end the backwards walk early (docs/evidence.md).
APPEND_SLACK = timedelta(days=7)



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
    consistent_snapshots = False  # whether ``snapshot()`` gives one consistent state (SQL back ends)
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
            rows, head = self.read_chain(chain)
            for stored in verified_chain(rows, self.trusted_keys, head, chain, self.witness_anchor(chain)):
                if q.matches(document_facts(stored.document)):
                    found[stored.record_id] = stored
        # records written before governance chains existed live in their stack's chain: indexed and checked
        for stored in self._select(replace(q, limit=None)):
            if not stored.chain_key.startswith(GOVERNANCE_PREFIX):
                found.setdefault(row_label(stored), checked(stored, self.trusted_keys))
        rows = sorted(found.values(), key=lambda r: (r.document.get("started_at") or "", r.chain_key, r.sequence),
                      reverse=True)
        return rows[: q.limit] if q.limit else rows

    def chain_since(self, chain: str, since: datetime, *, kind: str | None = None,
                    slack: timedelta = APPEND_SLACK) -> list[StoredRecord]:
        """Every record of ``chain`` whose *signed* ``started_at`` is at or after ``since`` (and of ``kind``), newest
        first -- found by position in the chain, never by the store's filter columns, so no column edit, deleted
        row or S3 delete marker can hide one. What the pack's memory of earlier deployments (single-use change
        requests, OIDC token and CI-run replay) is built on: hiding a record from those would *grant* a second use.

        The chain is read backwards from the store's head in growing pages until a record that started more than
        ``slack`` before ``since`` (or the chain's start); every row of that tail is checked (signature with
        :meth:`trust`, document, columns), linked to the next by sequence and ``prev_hash``, ends at the recorded
        head, and agrees with the newest signed checkpoint of the chain (with a witness). IntegrityError, naming the
        record or the chain, otherwise. Completeness rests on records being appended within ``slack`` of their
        start (a record spooled for longer than that may end the walk early; docs/evidence.md)."""
        floor = format_utc(since - slack)
        with self.snapshot():
            head = self.head_of(chain)
            if head is None:
                stray = next(iter(self.iter_chain(chain)), None)
                if stray is not None:
                    raise IntegrityError(f"evidence chain {chain}: the store holds record {row_label(stray)} of it "
                                         "but no head: the head was deleted; refusing to use the chain")
                return []
            rows: list[StoredRecord] = []
            lo, step = head[0], 64
            while lo > 0:
                start = max(0, lo - step)
                page = []
                with closing(self.iter_chain(chain, start)) as reading:  # type: ignore[type-var]
                    for stored in reading:
                        if stored.sequence > lo:
                            break
                        page.append(stored)
                rows = page + rows
                lo, step = start, step * 2
                first = page[0].document if page and isinstance(page[0].document, Mapping) else {}
                if page and page[0].sequence == start + 1 and str(first.get("started_at") or "") < floor:
                    break  # that record started before the window: nothing older can be in it
        anchor = self.witness_anchor(chain)
        last: tuple[int, str] | None = None
        for stored in rows:
            checked(stored, self.trusted_keys)
            problem = link_problem(last, stored) if last is not None else (
                None if stored.sequence == lo + 1 else
                ("gap", f"sequence gap: record(s) {lo + 1}..{stored.sequence - 1} missing (deleted?)"))
            if problem:
                raise IntegrityError(f"evidence record {row_label(stored)}: field sequence: {problem[1]}; refusing to "
                                     f"use chain {chain}")
            last = (stored.sequence, stored.hash)
        problem = head_problem(chain, last or (lo, GENESIS_HASH), head)
        if problem:
            raise IntegrityError(f"evidence chain {chain}: {problem[1]}; refusing to use it")
        if anchor is not None:
            problem = None
            if anchor[0] > head[0]:
                problem = anchor_problem(chain, head[0], None, anchor)
            elif anchor[0] > lo:  # inside this tail: the record there must be the one the checkpoint attests
                problem = anchor_problem(chain, head[0], rows[anchor[0] - lo - 1].hash, anchor)
            if problem:
                raise IntegrityError(f"evidence chain {chain}: {problem}; refusing to use it")
        cutoff = format_utc(since)
        wanted = _kind_value(kind) if kind is not None else None
        return [r for r in reversed(rows) if str(r.document.get("started_at") or "") >= cutoff
                and (wanted is None or r.document.get("kind") == wanted)]

    def snapshot(self) -> ContextManager[None]:
        """Reads inside see one consistent state of the store (heads and rows together) while others append. SQL
        back ends open a read transaction; S3 cannot, and its readers tolerate a head that lags its newest record."""
        return nullcontext()

    def read_chain(self, chain: str) -> tuple[list[StoredRecord], tuple[int, str] | None]:
        """One whole chain and the store's head for it, read consistently while other writers append: the head is
        read after the rows (a row is visible only with its head, so an honest head is never behind them), and rows
        appended between the two reads are read too. A head still behind the rows (rewound) or ahead of everything
        the store holds (tail cut) is left for the caller's checks to refuse."""
        with self.snapshot():
            rows = list(self.iter_chain(chain))
            head = self.heads().get(chain)
        for attempt in range(20):
            last = rows[-1].sequence if rows else 0
            seq = head[0] if head else 0
            if seq > last:
                more = list(self.iter_chain(chain, last))
                if not more:
                    break  # the store holds nothing past the rows: a cut tail, for the checks to name
                rows += more
            elif seq < last and attempt < 5:
                time.sleep(0.05 * (attempt + 1))  # S3 moves the head just after the record: give it a moment
            else:
                break
            head = self.heads().get(chain)
        return rows, head

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

    def head_of(self, chain: str) -> tuple[int, str] | None:
        """The store's recorded head of one chain (sequence, hash), or None."""
        return self.heads().get(chain)

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


