"""``verify_chain``: every signature, every hash, every sequence and prev link, every indexed column, per stack chain
-- and, given checkpoints, that the store still holds everything they attest.

Linear in the number of records and streaming (records may come from a generator). It does not stop at the first
broken record: every failure is collected (``ChainVerification.failures``), so tampering behind an earlier break
is reported too.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ps019.evidence.record import record_hash
from ps019.evidence.signing import public_key_map
from ps019.evidence.store import GENESIS_HASH, StoredRecord, head_problem, link_problem, row_label, row_problems

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass(frozen=True)
class ChainFailure:
    record_id: str | None
    chain_key: str
    sequence: int | None
    code: str  # edited | signature | unknown_key | column | gap | reordered | fork | truncated | head_rewound |
    #            checkpoint | malformed
    reason: str
    field: str | None = None  # the field or column at fault, where there is one

    def __str__(self) -> str:
        where = f"record {self.record_id}" if self.record_id else "chain"
        what = f" field {self.field}:" if self.field else ""
        return f"{where} (chain {self.chain_key}, sequence {self.sequence}):{what} {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "chain_key": self.chain_key, "sequence": self.sequence,
                "code": self.code, "field": self.field, "reason": self.reason}


@dataclass
class ChainVerification:
    ok: bool
    records_checked: int = 0
    chains: dict[str, tuple[int, str]] = field(default_factory=dict)  # chain_key -> (last sequence, last hash)
    failures: list[ChainFailure] = field(default_factory=list)
    checkpoints_checked: int = 0

    @property
    def first_failure(self) -> ChainFailure | None:
        return self.failures[0] if self.failures else None

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        cps = f", consistent with {self.checkpoints_checked} checkpoint(s)" if self.checkpoints_checked else ""
        if self.ok:
            return f"OK: {self.records_checked} records in {len(self.chains)} chain(s) verified{cps}"
        return f"BROKEN: {len(self.failures)} failure(s) in {self.records_checked} records; first: {self.failures[0]}"


def _as_keys(public_keys: Mapping[str, Any] | None) -> dict[str, Ed25519PublicKey]:
    keys = dict(public_keys or {})
    if all(isinstance(v, Ed25519PublicKey) for v in keys.values()):
        return keys
    return public_key_map(keys)


def verify_record(stored: StoredRecord, keys: Mapping[str, Ed25519PublicKey]) -> tuple[str, str] | None:
    """Signature and hash of one record; (code, reason) of the first problem or None."""
    problems = record_problems(stored, keys)
    return (problems[0][0], problems[0][2]) if problems else None


def record_problems(stored: StoredRecord, keys: Mapping[str, Any]) -> list[tuple[str, str | None, str]]:
    """(code, field, reason) of everything wrong with one row: signature, the document against what was signed,
    the record hash, and every indexed column the store keeps for it."""
    problems: list[tuple[str, str | None, str]] = list(row_problems(stored, keys))
    if not any(code in ("edited", "malformed", "signature", "unknown_key") for code, _, _ in problems):
        try:
            recomputed = record_hash(stored.document)
        except (ValueError, TypeError, RecursionError) as exc:  # rfc8785 refuses e.g. integers beyond 2**53
            problems.append(("malformed", "hash", f"record cannot be canonicalised ({type(exc).__name__})"))
        else:
            if recomputed != stored.document.get("hash"):
                problems.append(("edited", "hash", "record hash does not match its content (edited before signing?)"))
    return problems


def verify_chain(records: Iterable[StoredRecord], public_keys: Mapping[str, Any] | None,
                 heads: Mapping[str, tuple[int, str]] | Callable[[], Mapping[str, tuple[int, str]]] | None = None,
                 checkpoints: Iterable[Mapping[str, tuple[int, str]]] = (),
                 on_verified: Callable[[StoredRecord], None] | None = None) -> ChainVerification:
    """Verify records given in chain order (per chain ascending sequence; chains may interleave), reporting every
    failure.

    ``heads``: the store's recorded head per chain (``store.heads()``, or a function read after the records); a chain
    that ends before its head was
    truncated, one that runs past it had its head rewound, and a recorded head with no records at all means the
    whole chain was removed. ``checkpoints``: chain -> (sequence, hash) maps from signed checkpoints
    (``ps019.evidence.checkpoint``); the store must still hold each of those records, with that hash.
    ``on_verified``: called with each record that passed every check while its chain, from its start, had no
    failure (what a reader's verified index is built from).
    """
    keys = _as_keys(public_keys)
    result = ChainVerification(ok=True)
    last: dict[str, tuple[int, str]] = {}
    seen: dict[str, set[int]] = {}
    anchors: dict[tuple[str, int], str] = {}
    for cp in checkpoints:
        result.checkpoints_checked += 1
        for chain, (seq, digest) in cp.items():
            if anchors.setdefault((chain, int(seq)), digest) != digest:
                result.failures.append(ChainFailure(None, chain, int(seq), "checkpoint",
                                                    f"two checkpoints disagree on the hash of sequence {seq}"))
    reached: set[tuple[str, int]] = set()
    gaps: list[tuple[int, set[int]]] = []  # (failure index, the sequences missing at that point)
    broken: set[str] = set()  # chains with a failure so far

    def fail(stored: StoredRecord | None, chain: str, seq: int | None, code: str, reason: str,
             name: str | None = None) -> None:
        result.failures.append(ChainFailure(row_label(stored) if stored is not None else None, chain, seq, code,
                                            reason, name))

    for stored in records:
        try:
            chain, seq = stored.chain_key, int(stored.sequence)
        except (KeyError, TypeError, ValueError, AttributeError):
            fail(stored, "?", None, "malformed", "a stored row is not an evidence record")
            continue
        if not isinstance(stored.document, Mapping) or "record_id" not in stored.document:
            cols = stored.columns if isinstance(stored.columns, Mapping) else {}
            chain = str(cols.get("chain_key") or chain)
            fail(stored, chain, cols.get("sequence", seq), "malformed", "a stored row is not an evidence record")
            broken.add(chain)
            continue
        before = len(result.failures)
        for code, name, reason in record_problems(stored, keys):
            fail(stored, chain, seq, code, reason, name)
        prev_seq = last.get(chain, (0, GENESIS_HASH))[0]
        problem = link_problem(last.get(chain, (0, GENESIS_HASH)), stored)
        if problem and problem[0] == "gap":
            gaps.append((len(result.failures), set(range(prev_seq + 1, seq))))
        if problem:
            fail(stored, chain, seq, *problem, name="prev_hash" if problem[0] == "fork" else "sequence")
        if (chain, seq) in anchors:
            reached.add((chain, seq))
            if anchors[(chain, seq)] != stored.hash:
                fail(stored, chain, seq, "checkpoint", "record differs from the one a checkpoint attests: the "
                                                       "chain was rewritten from here (rollback or restored backup)",
                     "hash")
        last[chain] = (seq, stored.hash)
        seen.setdefault(chain, set()).add(seq)
        result.records_checked += 1
        if len(result.failures) > before:
            broken.add(chain)
        elif on_verified is not None and chain not in broken:
            on_verified(stored)
    _reorders(result, seen, gaps)
    if callable(heads):
        heads = heads()
    for chain in sorted(set(heads or {}) | (set(last) if heads is not None else set())):
        problem = head_problem(chain, last.get(chain, (0, GENESIS_HASH)), (heads or {}).get(chain))
        if problem:
            seq = last.get(chain, (0, ""))[0]
            fail(None, chain, seq + 1 if problem[0] == "truncated" else seq, *problem)
    for (chain, seq), _digest in sorted(anchors.items()):
        if (chain, seq) not in reached:
            have = last.get(chain, (0, ""))[0]
            fail(None, chain, seq, "checkpoint",
                 f"a checkpoint attests sequence {seq} of chain {chain} but the store "
                 + (f"ends at sequence {have}: truncated, head rewound or rolled back" if have < seq
                    else "does not hold it"))
    result.chains = dict(last)
    result.ok = not result.failures
    return result


def _reorders(result: ChainVerification, seen: Mapping[str, set[int]], gaps: list[tuple[int, set[int]]]) -> None:
    """A gap whose missing records turn up later in the same chain is a reordering, not a deletion."""
    for index, missing in gaps:
        f = result.failures[index]
        if missing <= seen.get(f.chain_key, set()):
            result.failures[index] = ChainFailure(f.record_id, f.chain_key, f.sequence, "reordered",
                                                  f"sequence {f.sequence} comes before {min(missing)}: records "
                                                  "reordered", f.field)


def verify_store(store: Any, public_keys: Mapping[str, Any] | None, stack: str | None = None,
                 checkpoints: Iterable[Mapping[str, tuple[int, str]]] = (),
                 on_verified: Callable[[StoredRecord], None] | None = None) -> ChainVerification:
    """Verify a whole store (or one chain) against the store's own recorded heads and any checkpoints."""
    checkpoints = list(checkpoints)
    if stack:
        checkpoints = [{k: v for k, v in cp.items() if k == stack} for cp in checkpoints]
    snapshot = getattr(store, "snapshot", None)
    def heads() -> dict[str, tuple[int, str]]:  # read after the rows: appends made meanwhile never look like a rewind
        return {k: v for k, v in store.heads().items() if not stack or k == stack}

    with snapshot() if snapshot is not None else nullcontext():  # heads and rows as of one moment (SQL stores)
        result = verify_chain(store.iter_all(stack), public_keys, heads, checkpoints, on_verified)
    if not getattr(store, "consistent_snapshots", False):
        _forgive_appends_during(store, result)
    return result


def _forgive_appends_during(store: Any, result: ChainVerification) -> None:
    """Without a snapshot (S3), a chain appended to while it was verified ends before the head read afterwards. That
    is not a truncation when the store now holds the records after the last one verified, linked to it."""
    kept = []
    for f in result.failures:
        last = result.chains.get(f.chain_key, (0, GENESIS_HASH))  # listed before its first record was written
        if f.code == "truncated":
            extra = list(store.iter_chain(f.chain_key, last[0]))
            if extra and extra[0].sequence == last[0] + 1 and extra[0].prev_hash == last[1]:
                continue
        kept.append(f)
    result.failures = kept
    result.ok = not kept
