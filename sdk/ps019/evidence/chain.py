"""``verify_chain``: every signature, every hash, every sequence and prev link, per stack chain.

Linear in the number of records and streaming (records may come from a generator); stops at the FIRST broken
record and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ps019.evidence.record import record_hash
from ps019.evidence.signing import PREDICATE_TYPE, decode_statement, public_key_map, verify_envelope
from ps019.evidence.store import GENESIS_HASH, StoredRecord

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass(frozen=True)
class ChainFailure:
    record_id: str | None
    chain_key: str
    sequence: int | None
    code: str  # edited | signature | unknown_key | gap | reordered | fork | truncated | malformed
    reason: str

    def __str__(self) -> str:
        where = f"record {self.record_id}" if self.record_id else "chain"
        return f"{where} (chain {self.chain_key}, sequence {self.sequence}): {self.reason}"


@dataclass
class ChainVerification:
    ok: bool
    records_checked: int = 0
    chains: dict[str, tuple[int, str]] = field(default_factory=dict)  # chain_key -> (last sequence, last hash)
    first_failure: ChainFailure | None = None

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        if self.ok:
            return f"OK: {self.records_checked} records in {len(self.chains)} chain(s) verified"
        return f"BROKEN: {self.first_failure}"


def _as_keys(public_keys: Mapping[str, Any] | None) -> dict[str, Ed25519PublicKey]:
    keys = dict(public_keys or {})
    if all(isinstance(v, Ed25519PublicKey) for v in keys.values()):
        return keys
    return public_key_map(keys)


def verify_record(stored: StoredRecord, keys: Mapping[str, Ed25519PublicKey]) -> tuple[str, str] | None:
    """Signature and hash of one record; (code, reason) of the first problem or None."""
    doc = stored.document
    ok, reason, payload = verify_envelope(stored.envelope, keys)
    if not ok:
        return ("unknown_key" if "unknown key" in reason else "signature"), reason
    stmt = decode_statement(payload)
    if stmt is None or stmt.get("predicateType") != PREDICATE_TYPE:
        return "signature", "signed payload is not a ps019 change-record statement"
    predicate = stmt.get("predicate")
    if predicate != doc:
        fields = sorted(k for k in set(predicate or {}) | set(doc) if (predicate or {}).get(k) != doc.get(k))
        return "edited", f"stored record differs from what was signed: field(s) {', '.join(fields)} edited"
    subject = (stmt.get("subject") or [{}])[0]
    if subject.get("name") != doc.get("record_id") or subject.get("digest", {}).get("sha256") != doc.get("hash"):
        return "edited", "statement subject does not name this record and hash"
    try:
        recomputed = record_hash(doc)
    except (ValueError, TypeError) as exc:  # rfc8785 refuses e.g. integers beyond 2**53
        return "malformed", f"record cannot be canonicalised ({type(exc).__name__})"
    if recomputed != doc.get("hash"):
        return "edited", "record hash does not match its content (edited before signing?)"
    return None


def verify_chain(records: Iterable[StoredRecord], public_keys: Mapping[str, Any] | None,
                 heads: Mapping[str, tuple[int, str]] | None = None) -> ChainVerification:
    """Verify records given in chain order (per chain ascending sequence; chains may interleave).

    ``heads``: the store's recorded head per chain (``store.heads()``); a chain that ends before its head was
    truncated, and a recorded head with no records at all means the whole chain was removed.
    """
    keys = _as_keys(public_keys)
    result = ChainVerification(ok=True)
    last: dict[str, tuple[int, str]] = {}

    def fail(stored: StoredRecord | None, chain: str, seq: int | None, code: str, reason: str) -> ChainVerification:
        result.ok = False
        result.first_failure = ChainFailure(stored.record_id if stored else None, chain, seq, code, reason)
        result.chains = dict(last)
        return result

    stream = iter(records)
    for stored in stream:
        try:
            chain, seq, prev = stored.chain_key, stored.sequence, stored.prev_hash
            stored.record_id  # noqa: B018 -- KeyError on a malformed document
        except (KeyError, TypeError, AttributeError):
            return fail(None, "?", None, "malformed", "a stored row is not an evidence record")
        problem = verify_record(stored, keys)
        if problem:
            return fail(stored, chain, seq, *problem)
        prev_seq, prev_h = last.get(chain, (0, GENESIS_HASH))
        if seq != prev_seq + 1:
            if seq > prev_seq + 1:
                missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
                # already failing: look at the rest to tell a reorder (the record comes later) from a deletion
                later = any(_safe_pos(r) == (chain, prev_seq + 1) for r in stream)
                if later:
                    return fail(stored, chain, seq, "reordered",
                                f"sequence {seq} comes before {prev_seq + 1}: records reordered")
                return fail(stored, chain, seq, "gap", f"sequence gap: record(s) {missing} missing (deleted?)")
            return fail(stored, chain, seq, "reordered",
                        f"sequence {seq} after {prev_seq}: records reordered or duplicated")
        if prev != prev_h:
            return fail(stored, chain, seq, "fork",
                        "prev_hash does not equal the previous record's hash (chain forked or a record replaced)")
        last[chain] = (seq, stored.hash)
        result.records_checked += 1
    for chain, (head_seq, head_hash) in (heads or {}).items():
        got_seq, got_hash = last.get(chain, (0, GENESIS_HASH))
        if got_seq < head_seq:
            return fail(None, chain, got_seq + 1, "truncated",
                        f"chain ends at sequence {got_seq} but the store's head is {head_seq}: tail truncated")
        if got_seq == head_seq and head_seq and got_hash != head_hash:
            return fail(None, chain, head_seq, "fork", "last record's hash differs from the store's recorded head")
    result.chains = dict(last)
    return result


def _safe_pos(stored: StoredRecord) -> tuple[str, int] | None:
    try:
        return stored.chain_key, stored.sequence
    except (KeyError, TypeError, AttributeError):
        return None


def verify_store(store: Any, public_keys: Mapping[str, Any] | None, stack: str | None = None) -> ChainVerification:
    """Verify a whole store (or one chain) against the store's own recorded heads."""
    heads = store.heads()
    if stack:
        heads = {k: v for k, v in heads.items() if k == stack}
    return verify_chain(store.iter_all(stack), public_keys, heads)
