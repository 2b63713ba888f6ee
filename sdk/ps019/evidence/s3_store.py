"""``s3://bucket/prefix``: one immutable object per record in an S3 Object Lock bucket.

Layout under the prefix (chain keys are URL-quoted)::

    chains/<chain>/records/<sequence:012d>.json   the record + envelope; written once with If-None-Match: *
    chains/<chain>/head.json                      {"sequence", "hash", "record_id"}; moved with If-Match (CAS)
    ids/<record_id>.json                          {"chain_key", "sequence"}; written once (lookup by ID)

Every object is written with Object Lock COMPLIANCE retention (``retention_days``). The conditional create on the
sequence-numbered key is what makes a fork impossible: two appenders that read the same head race for the same key
and exactly one wins (412 PreconditionFailed for the other). The head moves by compare-and-swap; an appender that
finds a record beyond the head (its writer crashed or is still moving the head) completes that append -- writes
the ID pointer and advances the head -- before retrying, so the chain never stalls and nothing is lost.
The bucket must already exist with Object Lock enabled (docs/evidence.md).
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from urllib.parse import quote, unquote, urlparse

from ps019.errors import InputError, IntegrityError, StoreError
from ps019.evidence.record import EvidenceRecord
from ps019.evidence.signing import Signer
from ps019.evidence.store import EvidenceStore, Query, StoredRecord, document_facts, seal, validated_record

_MAX_ATTEMPTS = 2000


class _Precondition(Exception):
    pass


class S3Store(EvidenceStore):
    def __init__(self, bucket: str, prefix: str = "", *, retention_days: int = 2557, client: Any = None,
                 connect_timeout: float = 5.0) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.retention_days = retention_days
        # a head that does not move for this long while its next sequence exists means that writer died
        self.stale_head_after = 1.0
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", config=Config(connect_timeout=connect_timeout, read_timeout=30,
                                                      retries={"max_attempts": 2, "mode": "standard"}))
        self._s3 = client

    @classmethod
    def from_url(cls, url: str, retention_days: int | None = None, connect_timeout: float = 5.0) -> "S3Store":
        parsed = urlparse(url)
        if not parsed.netloc:
            raise InputError("S3 store URL must be s3://bucket/prefix")
        return cls(parsed.netloc, parsed.path, retention_days=retention_days or 2557,
                   connect_timeout=connect_timeout)

    # --- keys -----------------------------------------------------------------------------------------------------
    def _k(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _record_key(self, chain: str, seq: int) -> str:
        return self._k("chains", quote(chain, safe=""), "records", f"{seq:012d}.json")

    def _head_key(self, chain: str) -> str:
        return self._k("chains", quote(chain, safe=""), "head.json")

    def _id_key(self, record_id: str) -> str:
        return self._k("ids", quote(record_id, safe="") + ".json")

    # --- S3 calls -------------------------------------------------------------------------------------------------
    def _call(self, op: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3, op)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                raise _Precondition(code) from exc
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(kwargs.get("Key")) from exc
            raise StoreError(f"S3 evidence store {self.url} refused {op}: {code or status}") from exc
        except BotoCoreError as exc:
            endpoint = getattr(self._s3.meta, "endpoint_url", "?")
            raise StoreError(f"S3 evidence store {self.url} unreachable at {endpoint}: "
                             f"{type(exc).__name__}") from exc

    def _lock_args(self) -> dict[str, Any]:
        until = datetime.now(timezone.utc) + timedelta(days=self.retention_days)
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}

    def _put_new(self, key: str, body: bytes) -> None:
        self._call("put_object", Key=key, Body=body, IfNoneMatch="*", ContentType="application/json",
                   **self._lock_args())

    def _get_json(self, key: str) -> tuple[dict[str, Any], str] | None:
        got = self._get_raw(key)
        return (_parse(got[0]), got[1]) if got is not None else None

    def _get_raw(self, key: str) -> tuple[bytes, str] | None:
        try:
            resp = self._call("get_object", Key=key)
        except KeyError:
            return None
        return resp["Body"].read(), resp["ETag"]

    def _read_head(self, chain: str) -> tuple[int, str | None, str | None]:
        got = self._get_json(self._head_key(chain))
        if got is None:
            return 0, None, None
        head, etag = got
        try:
            return int(head["sequence"]), str(head["hash"]), etag
        except (KeyError, TypeError, ValueError):
            raise IntegrityError(f"evidence chain {chain}: field head: {self._head_key(chain)} is not a chain head "
                                 "(sequence, hash); refusing to use the chain") from None

    def _cas_head(self, chain: str, stored: StoredRecord, etag: str | None) -> None:
        body = json.dumps({"sequence": stored.sequence, "hash": stored.hash,
                           "record_id": stored.record_id}).encode()
        cond = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        self._call("put_object", Key=self._head_key(chain), Body=body, ContentType="application/json",
                   **cond, **self._lock_args())

    def _advance_head_to(self, chain: str, stored: StoredRecord) -> None:
        """Move the head forward to ``stored`` unless someone already did (CAS loop)."""
        for _ in range(_MAX_ATTEMPTS):
            seq, _, etag = self._read_head(chain)
            if seq >= stored.sequence:
                return
            if seq != stored.sequence - 1:
                raise StoreError(f"S3 evidence store {self.url}: chain {chain} head at {seq}, cannot advance to "
                                 f"{stored.sequence}")
            try:
                self._cas_head(chain, stored, etag)
                return
            except _Precondition:
                continue
        raise StoreError(f"S3 evidence store {self.url}: could not advance the head of {chain}")

    def _ensure_id(self, stored: StoredRecord) -> None:
        body = json.dumps({"chain_key": stored.chain_key, "sequence": stored.sequence}).encode()
        try:
            self._put_new(self._id_key(stored.record_id), body)
        except _Precondition:
            pass

    # --- EvidenceStore --------------------------------------------------------------------------------------------
    def append(self, record: EvidenceRecord, signer: Signer) -> StoredRecord:
        record = validated_record(record)
        chain = record.chain_key
        already = self.get(record.record_id)
        if already is not None:
            return already
        last_seen, seen_since = None, time.monotonic()
        for attempt in range(_MAX_ATTEMPTS):
            seq, prev_hash, etag = self._read_head(chain)
            if seq != last_seen:
                last_seen, seen_since = seq, time.monotonic()
            elif time.monotonic() - seen_since > self.stale_head_after:
                # the head has not moved although sequence seq+1 is taken: its writer crashed (or it is our own
                # record from an earlier, interrupted call). Complete that append, then go on.
                got = self._get_json(self._record_key(chain, seq + 1))
                if got is not None:
                    other = StoredRecord(document=got[0]["record"], envelope=got[0]["envelope"])
                    self._ensure_id(other)
                    self._advance_head_to(chain, other)
                    if other.record_id == record.record_id:
                        self._appended([other], signer)
                        return other
                    continue
            stored = seal(record, signer, chain, seq, prev_hash)
            try:
                self._put_new(self._record_key(chain, stored.sequence), stored.to_json().encode())
            except _Precondition:
                # lost the race for this sequence: the winner needs two more writes to move the head, so back off
                # (randomised, growing) instead of hammering the head
                time.sleep(random.uniform(0.01, min(1.0, 0.02 * 2 ** min(attempt, 6))))
                continue
            self._ensure_id(stored)
            try:
                self._cas_head(chain, stored, etag)
            except _Precondition:
                self._advance_head_to(chain, stored)  # someone helped already, or retry the CAS
            self._appended([stored], signer)
            return stored
        raise StoreError(f"S3 evidence store {self.url}: too much contention on chain {chain}")

    def get(self, record_id: str) -> StoredRecord | None:
        pointer = self._get_json(self._id_key(record_id))
        if pointer is None:
            return None
        chain, seq = pointer[0].get("chain_key"), pointer[0].get("sequence")
        got = self._get_raw(self._record_key(str(chain), int(seq or 0)))
        if got is None:
            return None
        # the ID pointer is an index too: what it points at must be the record it names
        return _stored(got[0], {"record_id": record_id, "chain_key": chain, "sequence": seq})

    def _list(self, prefix: str, delimiter: str | None = None, **extra: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix, **extra}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            if token:
                kwargs["ContinuationToken"] = token
            resp = self._call("list_objects_v2", **kwargs)
            yield resp
            if not resp.get("IsTruncated"):
                return
            token = resp["NextContinuationToken"]

    def chains(self) -> list[str]:
        base = self._k("chains") + "/"
        out = []
        for page in self._list(base, "/"):
            for cp in page.get("CommonPrefixes", []):
                out.append(unquote(cp["Prefix"][len(base):].rstrip("/")))
        return sorted(out)

    def iter_all(self, stack: str | None = None) -> Iterator[StoredRecord]:
        """Every record object, with the S3 index facts about it as ``columns``: the chain and sequence its key
        names, and (as ``record_id``) whether its ID pointer points back at it."""
        for chain in ([stack] if stack else self.chains()):
            yield from self.iter_chain(chain)

    def iter_chain(self, chain: str, after: int = 0) -> Iterator[StoredRecord]:
        base = self._k("chains", quote(chain, safe=""), "records") + "/"
        start = {"StartAfter": self._record_key(chain, after)} if after else {}
        keys = [obj["Key"] for page in self._list(base, **start) for obj in page.get("Contents", [])]
        for key in sorted(keys):
            got = self._get_raw(key)
            if got is None:
                continue
            seq = int(key.rsplit("/", 1)[-1].split(".", 1)[0]) if key.endswith(".json") else None
            yield self._with_pointer(chain, seq, got[0])

    def record_at(self, chain: str, sequence: int) -> StoredRecord | None:
        got = self._get_raw(self._record_key(chain, sequence))
        return self._with_pointer(chain, sequence, got[0]) if got is not None else None

    def _with_pointer(self, chain: str, seq: int | None, body: bytes) -> StoredRecord:
        obj = _parse(body)
        columns: dict[str, Any] = {"chain_key": chain, "sequence": seq}
        record_id = (obj.get("record") or {}).get("record_id") if isinstance(obj.get("record"), dict) else None
        if isinstance(record_id, str):
            pointer = self._get_json(self._id_key(record_id))
            names = (pointer[0].get("chain_key"), pointer[0].get("sequence")) if pointer else None
            columns["record_id"] = record_id if names == (chain, seq) else \
                f"{record_id} (ids pointer names {names[0]}#{names[1]})" if names else \
                f"{record_id} (no ids pointer)"
        return _stored(body, columns)

    def chain_keys(self) -> list[str]:
        return self.chains()

    def head_of(self, chain: str) -> tuple[int, str] | None:
        seq, h, _ = self._read_head(chain)
        return (seq, h or "") if seq else None

    def heads(self) -> dict[str, tuple[int, str]]:
        out = {}
        for chain in self.chains():
            seq, h, _ = self._read_head(chain)
            if seq:
                out[chain] = (seq, h or "")
        return out

    def _select(self, q: Query) -> list[StoredRecord]:
        """A full scan (S3 has no secondary indexes), matched on each record's own document: fine for audits of one
        bucket, not for 1M-record lists -- use sqlite/PostgreSQL (or an export) for those."""
        hits = []
        for r in self.iter_all():
            try:
                if q.matches(document_facts(r.document)):
                    hits.append(r)
            except (KeyError, TypeError, AttributeError):
                hits.append(r)  # not an evidence record: returned so that the check names it
        hits.sort(key=lambda r: str(r.document.get("started_at", "")), reverse=True)
        return hits[: q.limit] if q.limit else hits


def _parse(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _stored(body: bytes, columns: dict[str, Any]) -> StoredRecord:
    """A record object's body as a StoredRecord; an undecodable one becomes an empty record the checks then name."""
    obj = _parse(body)
    return StoredRecord(document=obj.get("record") if isinstance(obj.get("record"), dict) else {},
                        envelope=obj.get("envelope") if isinstance(obj.get("envelope"), dict) else {},
                        columns=columns, raw=(body,))


def open_url(url: str, settings: Any = None) -> S3Store:
    """The registry's opener for ``s3://`` URLs."""
    return S3Store.from_url(url, retention_days=getattr(settings, "s3_retention_days", None),
                            connect_timeout=getattr(settings, "connect_timeout_s", 5.0))
