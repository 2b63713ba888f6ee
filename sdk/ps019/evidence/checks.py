"""The checks every read rests on: a row's document against its envelope and signature, its indexed columns against
the document (``checked``), one chain read whole from genesis to its head and a signed checkpoint
(``verified_chain``), and the link and head conditions ``verify`` reports (``link_problem``, ``head_problem``,
``anchor_problem``)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.errors import IntegrityError
from ps019.evidence.integrity import document_problem, short
from ps019.evidence.rows import _BOOL_COLUMNS, GENESIS_HASH, StoredRecord, expected_columns


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
    where = stored.columns if isinstance(stored.columns, Mapping) else {}
    if where.get("chain_key") is not None and where.get("sequence") is not None:
        return f"<unnamed row at {where['chain_key']} #{where['sequence']}>"  # e.g. an S3 object that is no record
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
