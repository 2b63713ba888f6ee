"""``emit``: append a record, or spool it locally when the store is unreachable (never raises for an outage).
``flush_spool``: deliver spooled records in order, exactly once (idempotent by record ID).

A spool file holds the record before it is chained (the store assigns sequence and prev_hash at delivery) plus a
DSSE envelope over it by the evidence signer (predicate type ``.../spooled-record/v1``), so a spool file edited
while waiting is refused at flush instead of being chained and signed as genuine.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from ps019.errors import InputError, IntegrityError, StoreError
from ps019.evidence.record import EvidenceRecord, canonical_bytes
from ps019.evidence.settings import EvidenceSettings
from ps019.evidence.signing import (SPOOL_PREDICATE_TYPE, Signer, decode_statement, load_signer, public_key_map,
                                    verify_envelope)
from ps019.evidence.registry import open_store
from ps019.evidence.store import EvidenceStore, StoredRecord, redact_forbidden, validated_record

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EmitResult:
    status: Literal["stored", "spooled"]
    store_url: str
    record_id: str
    message: str
    level: Literal["advisory", "mandatory"] = "advisory"  # how the run should treat a spooled record
    stored: StoredRecord | None = field(default=None, repr=False)
    spool_file: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "stored"


def emit(record: EvidenceRecord, settings: EvidenceSettings | None = None, *, signer: Signer | None = None,
         store: EvidenceStore | None = None) -> EmitResult:
    settings = settings or EvidenceSettings()
    url = store.url if store is not None else settings.resolved_store_url()
    signer = signer or load_signer(settings)
    record = validated_record(record)
    try:
        if store is not None:
            stored = store.append(record, signer)
        else:
            with open_store(url, settings) as opened:
                stored = opened.append(record, signer)
        return EmitResult("stored", _safe_url(url), record.record_id,
                          f"evidence record {record.record_id} stored in {_safe_url(url)} "
                          f"(chain {stored.chain_key} #{stored.sequence})", stored=stored)
    except StoreError as exc:
        reason = str(exc)
    except InputError:
        raise  # the record itself is unusable: spooling it would only defer the same failure
    except Exception as exc:  # noqa: BLE001 -- a driver error must not lose the record; spool it and say why
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    path = spool(record, settings, signer)
    level = settings.outage_level if record.environment == "production" else "advisory"
    msg = (f"evidence store {_safe_url(url)} unavailable ({reason}); record {record.record_id} spooled to "
           f"{path.parent} -- deliver it with `ps019 evidence flush`")
    log.warning("evidence.spooled", record_id=record.record_id, store=_safe_url(url), level=level)
    return EmitResult("spooled", _safe_url(url), record.record_id, msg, level=level, spool_file=str(path))


def spool(record: EvidenceRecord, settings: EvidenceSettings, signer: Signer) -> Path:
    """Write the (redacted, unchained) record atomically into the spool directory; returns the file."""
    directory = settings.resolved_spool_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = redact_forbidden(record.document(), record.forbidden_values)
        digest = hashlib.sha256(canonical_bytes(doc)).hexdigest()
        envelope = signer.sign_statement(doc["record_id"], digest, doc, predicate_type=SPOOL_PREDICATE_TYPE)
        body = json.dumps({"record": doc, "envelope": envelope}, sort_keys=True).encode()
        name = f"{time.time_ns():020d}-{_safe_name(doc['record_id'])}.json"
        final = directory / name
        tmp = directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final
    except OSError as exc:
        raise StoreError(f"evidence store unavailable and the spool {directory} is not writable: "
                         f"{exc.strerror}") from exc


@dataclass
class FlushResult:
    delivered: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    remaining: int = 0
    store_url: str = ""

    def summary(self) -> str:
        return (f"{len(self.delivered)} delivered, {len(self.already_present)} already in the store, "
                f"{self.remaining} still spooled ({self.store_url})")


def spooled_files(settings: EvidenceSettings | None = None) -> list[Path]:
    directory = (settings or EvidenceSettings()).resolved_spool_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


def flush_spool(settings: EvidenceSettings | None = None, *, signer: Signer | None = None,
                store: EvidenceStore | None = None) -> FlushResult:
    """Append spooled records in spool order; skip IDs already stored; delete each file only after its append.
    Raises StoreError if the store is still unreachable (nothing is removed) and IntegrityError for a spool file
    that fails its signature (it is left in place)."""
    settings = settings or EvidenceSettings()
    signer = signer or load_signer(settings)
    keys = {signer.keyid: signer.public_key}
    keys.update(_configured_keys(settings))
    files = spooled_files(settings)
    own = store is None
    store = store or open_store(settings.resolved_store_url(), settings)
    result = FlushResult(store_url=_safe_url(store.url))
    try:
        for i, path in enumerate(files):
            record = _read_spooled(path, keys)
            if store.contains(record.record_id):
                result.already_present.append(record.record_id)
            else:
                store.append(record, signer)
                result.delivered.append(record.record_id)
            path.unlink()
            result.remaining = len(files) - i - 1
    finally:
        result.remaining = len(spooled_files(settings))
        if own:
            store.close()
    log.info("evidence.flushed", delivered=len(result.delivered), skipped=len(result.already_present),
             remaining=result.remaining)
    return result


def _read_spooled(path: Path, keys) -> EvidenceRecord:
    try:
        obj = json.loads(path.read_bytes())
        doc, envelope = obj["record"], obj["envelope"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"spool file {path.name} is unreadable or malformed") from exc
    ok, reason, payload = verify_envelope(envelope, keys)
    stmt = decode_statement(payload) if ok else None
    if not ok or stmt is None or stmt.get("predicateType") != SPOOL_PREDICATE_TYPE or stmt.get("predicate") != doc:
        raise IntegrityError(f"spool file {path.name} fails its signature check ({reason or 'content edited'}); "
                             "left in place")
    return EvidenceRecord.model_validate(doc)


def _configured_keys(settings: EvidenceSettings):
    return public_key_map(settings.verify_keys) if settings.verify_keys else {}


def _safe_name(record_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in record_id)[:100]


def _safe_url(url: str) -> str:
    """The store URL without credentials (postgresql://user:pw@host -> postgresql://host)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://…"
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    return url  # nothing to hide: keep it exactly as given, so it can be pasted back into --store
