"""Witnessed checkpoints: after every append, a signed checkpoint of the chain it extended is published to a sink
the store's writer cannot rewrite; readers (the pack, ``evidence verify``, the verified index) refuse a store that is
behind the latest checkpoint they can read.

Modelled on Certificate Transparency / Sigstore Rekor signed tree heads gossiped to witnesses and on CloudTrail's
digest files. A checkpoint (``ps019.evidence.checkpoint``) attests (sequence, hash) of one chain's newest record;
because every record commits to its predecessor, that hash commits to the whole chain up to it, so "the store is
consistent with the checkpoint" is simply "the store still holds that record at that sequence" -- one indexed read
(:func:`behind_checkpoints`), or the chain's own verification for an auditor.

Sinks (``evidence.checkpoints.sink`` in the pack config):

* ``file:///dir`` -- one append-only JSON-lines file per store and chain (``<dir>/<store id>/<chain>.jsonl``), each
  line a checkpoint, appended under an exclusive lock and only when newer than the last line: a file the auditor
  keeps, a mounted second volume, a CI artifact;
* ``s3://bucket/prefix`` -- one object per checkpoint, written once (``If-None-Match: *``) with Object Lock
  COMPLIANCE retention, keyed so that the newest sorts first (one LIST with ``MaxKeys=1`` finds it);
* ``stderr`` -- one line ``ps019-checkpoint: {...}`` on standard error, for the CI log. Nothing can read it back, so
  it protects only through whoever keeps the log (``evidence verify --checkpoint`` takes those lines).
"""

from __future__ import annotations

import abc
import fcntl
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote, urlparse

import structlog

from ps019.errors import InputError, IntegrityError, StoreError
from ps019.evidence.checkpoint import LOG_PREFIX, make_checkpoint, parse_checkpoint
from ps019.evidence.store import StoredRecord, anchor_problem, checked

log = structlog.get_logger(__name__)

_SEQ_SPAN = 10 ** 12  # S3 keys hold _SEQ_SPAN - sequence, so the newest checkpoint sorts first


def store_id(store_url: str) -> str:
    """The sink's folder for one store: checkpoints of two stores sharing a sink never mix."""
    return hashlib.sha256(store_url.encode()).hexdigest()[:16]


class CheckpointSink(abc.ABC):
    url: str
    readable = True

    @abc.abstractmethod
    def publish(self, store_url: str, chain: str, sequence: int, document: Mapping[str, Any]) -> None:
        """Publish one checkpoint document (idempotent; an older one than the newest published is dropped)."""

    @abc.abstractmethod
    def latest(self, store_url: str, chain: str) -> dict[str, Any] | None:
        """The newest checkpoint document published for ``chain`` of ``store_url``, or None."""

    @abc.abstractmethod
    def chains(self, store_url: str) -> list[str]:
        """Every chain of ``store_url`` with a published checkpoint."""


class FileSink(CheckpointSink):
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.url = f"file://{directory}"

    def _file(self, store_url: str, chain: str) -> Path:
        return self.directory / store_id(store_url) / (quote(chain, safe="") + ".jsonl")

    def publish(self, store_url: str, chain: str, sequence: int, document: Mapping[str, Any]) -> None:
        path = self._file(store_url, chain)
        line = (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            about = path.parent / "store.txt"
            if not about.exists():
                about.write_text(store_url + "\n", encoding="utf-8")
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # one publisher at a time: lines only ever move forward
                last = _sequence_of(_last_line(fd), chain)
                if last is None or sequence > last:
                    os.write(fd, line)
                    os.fsync(fd)
            finally:
                os.close(fd)  # releases the lock
        except OSError as exc:
            raise StoreError(f"checkpoint sink {self.url}: cannot write {path.name}: {exc.strerror}") from None

    def latest(self, store_url: str, chain: str) -> dict[str, Any] | None:
        path = self._file(store_url, chain)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"checkpoint sink {self.url}: cannot read {path.name}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            line = _last_line(fd)
        finally:
            os.close(fd)
        return _parse_line(line, f"checkpoint sink {self.url} ({path.name})") if line else None

    def chains(self, store_url: str) -> list[str]:
        folder = self.directory / store_id(store_url)
        if not folder.is_dir():
            return []
        return sorted(unquote(p.name[: -len(".jsonl")]) for p in folder.glob("*.jsonl"))


class S3Sink(CheckpointSink):
    def __init__(self, bucket: str, prefix: str, retention_days: int = 2557, client: Any = None,
                 connect_timeout: float = 5.0) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.retention_days = retention_days
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", config=Config(connect_timeout=connect_timeout, read_timeout=30,
                                                      retries={"max_attempts": 2, "mode": "standard"}))
        self._s3 = client

    def _folder(self, store_url: str, chain: str | None = None) -> str:
        parts = [self.prefix, store_id(store_url)] + ([quote(chain, safe="")] if chain is not None else [])
        return "/".join(p for p in parts if p) + "/"

    def _call(self, op: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3, op)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if str(err.get("Code")) in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                return None  # this checkpoint was published already
            raise StoreError(f"checkpoint sink {self.url} refused {op}: {err.get('Code') or status}") from None
        except BotoCoreError as exc:
            raise StoreError(f"checkpoint sink {self.url} unreachable: {type(exc).__name__}") from None

    def publish(self, store_url: str, chain: str, sequence: int, document: Mapping[str, Any]) -> None:
        key = f"{self._folder(store_url, chain)}{_SEQ_SPAN - sequence:013d}.json"
        until = datetime.now(timezone.utc) + timedelta(days=self.retention_days)
        self._call("put_object", Key=key, Body=json.dumps(document, sort_keys=True).encode(), IfNoneMatch="*",
                   ContentType="application/json", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)

    def latest(self, store_url: str, chain: str) -> dict[str, Any] | None:
        listed = self._call("list_objects_v2", Prefix=self._folder(store_url, chain), MaxKeys=1) or {}
        contents = listed.get("Contents") or []
        if not contents:
            return None
        body = self._call("get_object", Key=contents[0]["Key"])["Body"].read()
        return _parse_line(body, f"checkpoint sink {self.url} ({contents[0]['Key']})")

    def chains(self, store_url: str) -> list[str]:
        base = self._folder(store_url)
        out, token = [], None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._call("list_objects_v2", Prefix=base, Delimiter="/", **extra) or {}
            out += [unquote(cp["Prefix"][len(base):].rstrip("/")) for cp in page.get("CommonPrefixes", [])]
            if not page.get("IsTruncated"):
                return sorted(out)
            token = page["NextContinuationToken"]


class LogSink(CheckpointSink):
    """One line per checkpoint on standard error (the CI log keeps it); write-only."""

    readable = False
    url = "stderr"

    def publish(self, store_url: str, chain: str, sequence: int, document: Mapping[str, Any]) -> None:
        sys.stderr.write(LOG_PREFIX + json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")
        sys.stderr.flush()

    def latest(self, store_url: str, chain: str) -> dict[str, Any] | None:
        return None

    def chains(self, store_url: str) -> list[str]:
        return []


def open_sink(url: str, retention_days: int = 2557, connect_timeout: float = 5.0) -> CheckpointSink:
    """The sink for ``url``: ``file:///absolute/dir``, ``s3://bucket/prefix`` or ``stderr``."""
    if url == "stderr":
        return LogSink()
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.path.startswith("/") and not parsed.netloc:
        return FileSink(Path(unquote(parsed.path)))
    if parsed.scheme == "s3" and parsed.netloc:
        return S3Sink(parsed.netloc, parsed.path, retention_days, connect_timeout=connect_timeout)
    raise InputError(f"checkpoint sink {url!r} is not file:///absolute/dir, s3://bucket/prefix or stderr")


@dataclass
class Witness:
    """A store's publisher and reader of checkpoints (attached by ``open_store`` from ``evidence.checkpoints``)."""

    sink: CheckpointSink
    store_url: str
    every: int = 1
    last_error: str | None = None  # why the most recent publication failed, if it did

    def appended(self, store: Any, stored: list[StoredRecord], signer: Any) -> None:
        first: dict[str, int] = {}
        last: dict[str, StoredRecord] = {}
        for s in stored:
            first.setdefault(s.chain_key, s.sequence)
            last[s.chain_key] = s
        for chain, s in last.items():
            if self.every > 1 and s.sequence // self.every == (first[chain] - 1) // self.every:
                continue  # no multiple of `every` reached in this append
            try:
                doc = make_checkpoint(self.store_url, {chain: (s.sequence, s.hash)}, signer, verified=False)
                self.sink.publish(self.store_url, chain, s.sequence, doc)
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 -- the record is stored; the next checkpoint covers it
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("evidence.checkpoint_unpublished", chain=chain, sequence=s.sequence,
                            sink=self.sink.url, error=self.last_error)

    def anchor(self, chain: str, keys: Mapping[str, Any] | None) -> tuple[int, str] | None:
        """(sequence, hash) of the newest readable checkpoint of ``chain``, its signature checked against ``keys``;
        IntegrityError for one that does not verify, StoreError when the sink cannot be read."""
        doc = self.sink.latest(self.store_url, chain)
        if doc is None:
            return None
        cp = parse_checkpoint(doc, keys or {}, f"checkpoint of chain {chain} in {self.sink.url}")
        if cp.store != self.store_url or chain not in cp.chains:
            raise IntegrityError(f"checkpoint of chain {chain} in {self.sink.url}: field store: attests "
                                 f"{cp.store} {sorted(cp.chains)}, not this store's chain")
        return cp.chains[chain]

    def anchors(self, keys: Mapping[str, Any] | None, chains: Iterable[str] | None = None
                ) -> dict[str, tuple[int, str]]:
        out = {}
        for chain in (self.sink.chains(self.store_url) if chains is None else chains):
            got = self.anchor(chain, keys)
            if got is not None:
                out[chain] = got
        return out


def open_witness(settings: Any, store_url: str) -> Witness:
    """The witness for ``evidence.checkpoints`` settings (``sink``, ``every``)."""
    cps = settings.checkpoints
    sink = open_sink(cps.sink, retention_days=cps.retention_days or getattr(settings, "s3_retention_days", 2557),
                     connect_timeout=getattr(settings, "connect_timeout_s", 5.0))
    return Witness(sink=sink, store_url=store_url, every=cps.every)


def behind_checkpoints(store: Any, chains: Iterable[str]) -> list[tuple[str, str]]:
    """(kind, reason) for each way ``store`` cannot be trusted against its witness for ``chains`` (empty when it
    can). ``behind``: a chain ends before its newest signed checkpoint, or holds another record at its sequence --
    truncated, head rewound or rolled back; also a checkpoint that does not verify (someone wrote the sink).
    ``unreadable``: the sink cannot be read (fail closed, like an unreachable store). What the pack checks, for its
    stack's chains, before anything changes."""
    witness = getattr(store, "witness", None)
    if witness is None or not witness.sink.readable:
        return []
    problems = []
    heads = None
    for chain in chains:
        try:
            anchor = witness.anchor(chain, store.trusted_keys)
            if anchor is None:
                continue
            heads = store.heads() if heads is None else heads
            head_seq = heads.get(chain, (0, ""))[0]
            at = store.record_at(chain, anchor[0]) if head_seq >= anchor[0] else None
            if at is not None:
                checked(at, store.trusted_keys)
            problem = anchor_problem(chain, head_seq, at.hash if at is not None else None, anchor)
            if problem:
                problems.append(("behind", f"{problem} (checkpoint in {witness.sink.url})"))
        except StoreError as exc:
            problems.append(("unreadable", f"cannot read the checkpoints of chain {chain}: {exc}"))
        except (IntegrityError, InputError) as exc:
            problems.append(("behind", f"cannot check chain {chain} against its checkpoints: {exc}"))
    return problems


def _last_line(fd: int) -> bytes:
    """The last complete line of an open file (read backwards in blocks)."""
    end = os.lseek(fd, 0, os.SEEK_END)
    data, pos = b"", end
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        body = data.rstrip(b"\n")
        if b"\n" in body:
            return body.rsplit(b"\n", 1)[1]
    return data.rstrip(b"\n")


def _sequence_of(line: bytes, chain: str) -> int | None:
    if not line:
        return None
    try:
        return int(json.loads(line)["checkpoint"]["chains"][chain][0])
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        return None  # an unreadable last line: publish after it (readers report it)


def _parse_line(line: bytes | str, source: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise IntegrityError(f"{source}: not a JSON checkpoint") from None
    if not isinstance(obj, dict):
        raise IntegrityError(f"{source}: not a JSON checkpoint")
    return obj
