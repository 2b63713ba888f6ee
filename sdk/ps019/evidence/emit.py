"""``emit``: append a record, or spool it locally when the store is unreachable (never raises for an outage).
``flush_spool``: deliver spooled records in order, exactly once (idempotent by record ID), to the store each was
written for.

A spool file holds the record before it is chained (the store assigns sequence and prev_hash at delivery), the store
it was meant for (its URL without credentials) and a DSSE envelope over both by the evidence signer (predicate type
``.../spooled-record/v1``, predicate ``{"destination", "record"}``), so a spool file edited while waiting -- its
record or its destination -- is refused at flush instead of being chained and signed as genuine. Files written before
destinations existed (predicate = the record alone) are delivered only to a store named explicitly.
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
from ps019.evidence.record import EvidenceRecord, canonical_document_bytes
from ps019.evidence.settings import EvidenceSettings, resolve_store_url
from ps019.evidence.signing import (SPOOL_PREDICATE_TYPE, Signer, decode_statement, load_signer, public_key_map,
                                    verify_envelope)
from ps019.evidence.registry import open_store
from ps019.evidence.redact import redact_forbidden
from ps019.evidence.store import EvidenceStore, StoredRecord, validated_record

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
         store: EvidenceStore | None = None, spool_first: bool = False) -> EmitResult:
    """Append ``record``; if the store cannot be reached, spool it and say so. ``spool_first`` writes the spool file
    before trying the store and removes it once the append succeeded, so a process killed mid-append (a signal's
    grace period) still leaves the record behind; a later flush skips it if the append had landed."""
    settings = settings or EvidenceSettings()
    url = store.url if store is not None else settings.resolved_store_url()
    signer = signer or load_signer(settings)
    record = validated_record(record)
    early = spool(record, settings, signer, url) if spool_first else None
    try:
        if store is not None:
            stored = store.append(record, signer)
        else:
            with open_store(url, settings) as opened:
                stored = opened.append(record, signer)
        if early is not None:
            early.unlink(missing_ok=True)
        return EmitResult("stored", _safe_url(url), record.record_id,
                          f"evidence record {record.record_id} stored in {_safe_url(url)} "
                          f"(chain {stored.chain_key} #{stored.sequence})", stored=stored)
    except StoreError as exc:
        reason = str(exc)
    except InputError:
        raise  # the record itself is unusable: spooling it would only defer the same failure
    except Exception as exc:  # noqa: BLE001 -- a driver error must not lose the record; spool it and say why
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    path = early or spool(record, settings, signer, url)
    level = settings.outage_level_for(record.environment)
    msg = (f"evidence store {_safe_url(url)} unavailable ({reason}); record {record.record_id} spooled to "
           f"{path.parent} -- deliver it with `ps019 evidence flush`")
    log.warning("evidence.spooled", record_id=record.record_id, store=_safe_url(url), level=level)
    return EmitResult("spooled", _safe_url(url), record.record_id, msg, level=level, spool_file=str(path))


def spool(record: EvidenceRecord, settings: EvidenceSettings, signer: Signer, destination: str | None = None) -> Path:
    """Write the (redacted, unchained) record atomically into the spool directory; returns the file. The file names
    the store the record was meant for (``destination``, without credentials), inside the signature, so that
    ``flush`` delivers it there and nowhere else."""
    directory = settings.resolved_spool_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = redact_forbidden(record.document(), record.forbidden_values)
        digest = hashlib.sha256(canonical_document_bytes(doc)).hexdigest()  # escapes, marked
        dest = store_identity(destination or settings.resolved_store_url())
        envelope = signer.sign_statement(doc["record_id"], digest, {"destination": dest, "record": doc},
                                         predicate_type=SPOOL_PREDICATE_TYPE)
        body = json.dumps({"destination": dest, "record": doc, "envelope": envelope}, sort_keys=True).encode()
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
    refused: list[str] = field(default_factory=list)  # one line per destination whose records stay spooled

    def summary(self) -> str:
        return (f"{len(self.delivered)} delivered, {len(self.already_present)} already in the store, "
                f"{self.remaining} still spooled ({self.store_url or 'no store'})")


def spooled_files(settings: EvidenceSettings | None = None) -> list[Path]:
    directory = (settings or EvidenceSettings()).resolved_spool_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


@dataclass(frozen=True)
class SpooledRecord:
    path: Path
    record: EvidenceRecord
    destination: str | None  # None: written before spool files named their store (deliver with an explicit store)


def flush_spool(settings: EvidenceSettings | None = None, *, signer: Signer | None = None,
                store: EvidenceStore | None = None) -> FlushResult:
    """Append spooled records, in spool order, to the store each was written for; skip IDs already stored; delete
    each file only after its append.

    The target: ``store`` when given, else ``settings.store_url`` when set explicitly -- then only the records
    spooled for that store (same URL without credentials) are delivered, plus files that predate destinations --
    else every record goes to its own destination (credentials come from ``$PS019_EVIDENCE_STORE`` when its URL is
    the same store). Records for another store are never delivered: they stay spooled and ``refused`` says why, one
    line per store. Raises StoreError if a target store is unreachable (nothing of it is removed) and IntegrityError
    for a spool file that fails its signature (it is left in place)."""
    settings = settings or EvidenceSettings()
    signer = signer or load_signer(settings)
    keys = {signer.keyid: signer.public_key}
    keys.update(_configured_keys(settings))
    spooled = [_read_spooled(path, keys) for path in spooled_files(settings)]
    explicit = store.url if store is not None else settings.store_url
    result = FlushResult(store_url=_safe_url(explicit) if explicit else "")
    groups: dict[str, list[SpooledRecord]] = {}
    legacy = [s for s in spooled if s.destination is None]
    for item in spooled:
        if item.destination is not None:
            groups.setdefault(item.destination, []).append(item)
    targets: list[tuple[str, list[SpooledRecord]]] = []
    if explicit:
        wanted = store_identity(explicit)
        targets.append((explicit, groups.pop(wanted, []) + legacy))
        for dest, items in groups.items():
            result.refused.append(f"{len(items)} record(s) spooled for {dest} not delivered to {wanted}: a spooled "
                                  f"record goes only to the store it was written for (run `ps019 evidence flush "
                                  f"--store {dest}`)")
    else:
        if legacy:
            result.refused.append(f"{len(legacy)} spool file(s) written before spool files named their store (e.g. "
                                  f"{legacy[0].path.name}); deliver them with `ps019 evidence flush --store URL`")
        configured = resolve_store_url(None)
        for dest, items in groups.items():
            targets.append((configured if store_identity(configured) == dest else dest, items))
        result.store_url = ", ".join(dest for dest in groups) if groups else ""
    errors: list[str] = []
    try:
        for url, items in targets:
            if not items:
                continue
            try:
                _deliver(items, url, settings, signer, store if explicit and store is not None else None, result)
            except StoreError as exc:
                if explicit:
                    raise
                errors.append(str(exc))
    finally:
        result.remaining = len(spooled_files(settings))
    log.info("evidence.flushed", delivered=len(result.delivered), skipped=len(result.already_present),
             remaining=result.remaining, refused=len(result.refused))
    if errors:
        raise StoreError(errors[0] + (f" (and {len(errors) - 1} other store(s) unreachable)" if len(errors) > 1 else ""))
    return result


def _deliver(items: list[SpooledRecord], url: str, settings: EvidenceSettings, signer: Signer,
             store: EvidenceStore | None, result: FlushResult) -> None:
    own = store is None
    if own:
        try:
            store = open_store(url, settings)
        except (StoreError, InputError):
            raise
        except Exception as exc:  # noqa: BLE001 -- a driver error: one line naming the store
            raise StoreError(f"cannot reach evidence store {_safe_url(url)}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        for item in items:
            if store.contains(item.record.record_id):
                result.already_present.append(item.record.record_id)
            else:
                store.append(item.record, signer)
                result.delivered.append(item.record.record_id)
            item.path.unlink()
    finally:
        if own:
            store.close()


def _read_spooled(path: Path, keys) -> SpooledRecord:
    try:
        obj = json.loads(path.read_bytes())
        doc, envelope = obj["record"], obj["envelope"]
        destination = obj.get("destination")
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise IntegrityError(f"spool file {path.name} is unreadable or malformed") from None
    ok, reason, payload = verify_envelope(envelope, keys)
    stmt = decode_statement(payload) if ok else None
    signed = stmt.get("predicate") if stmt is not None else None
    expected = doc if destination is None else {"destination": destination, "record": doc}
    if not ok or stmt is None or stmt.get("predicateType") != SPOOL_PREDICATE_TYPE or signed != expected:
        raise IntegrityError(f"spool file {path.name} fails its signature check ({reason or 'content edited'}); "
                             "left in place")
    try:
        record = EvidenceRecord.model_validate(doc)
    except ValueError as exc:
        raise IntegrityError(f"spool file {path.name} holds no valid record: {str(exc).splitlines()[0]}") from None
    return SpooledRecord(path, record, destination)


def _configured_keys(settings: EvidenceSettings):
    return public_key_map(settings.verify_keys) if settings.verify_keys else {}


def _safe_name(record_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in record_id)[:100]


def safe_url(url: str) -> str:
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


_safe_url = safe_url


def store_identity(url: str) -> str:
    """The store a URL names, without credentials or options, so that two spellings of one store compare equal
    (``sqlite:////abs/e.db`` and ``sqlite:///abs/e.db?mode=ro`` are the same file)."""
    if url.startswith("sqlite:"):
        path = url.split(":", 1)[1].lstrip("/").split("?", 1)[0]
        return f"sqlite:///{os.path.normpath('/' + path).lstrip('/')}"
    return safe_url(url).split("?", 1)[0]
