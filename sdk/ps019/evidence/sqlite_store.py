"""``sqlite:///path``: the embedded default store.

WAL mode; appends under ``BEGIN IMMEDIATE`` (the write lock is taken *before* the chain head is read, so concurrent
processes serialise and never fork); triggers RAISE on UPDATE/DELETE of records and on any rewind of a chain head;
an INSERT trigger refuses a row that does not extend its chain's head. Indexed columns back every ``list`` filter.
Triggers are a guard, not security: whoever can write the file can drop them -- the hash chain and signatures are
what make tampering evident (docs/evidence.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Any, Iterator
from urllib.parse import unquote

from ps019.errors import InputError, StoreError
from ps019.evidence.record import EvidenceRecord
from ps019.evidence.signing import Signer
from ps019.evidence.sql import sql_select
from ps019.evidence.store import (COLUMNS, EvidenceStore, Query, StoredRecord, decoded_row, document_facts, seal,
                                  validated_record)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  id INTEGER PRIMARY KEY,                  -- global insertion order
  record_id TEXT NOT NULL UNIQUE,
  chain_key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  stack TEXT NOT NULL,
  environment TEXT NOT NULL,
  change_class TEXT,
  actor TEXT,
  started_at TEXT NOT NULL,               -- fixed-width UTC, sorts as text
  break_glass INTEGER NOT NULL,
  has_violations INTEGER NOT NULL,
  document TEXT NOT NULL,                 -- the record as hashed
  envelope TEXT NOT NULL,                 -- DSSE envelope
  UNIQUE (chain_key, seq)
);
CREATE TABLE IF NOT EXISTS heads (
  chain_key TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'evidence records are append-only (UPDATE refused)'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'evidence records are append-only (DELETE refused)'); END;
CREATE TRIGGER IF NOT EXISTS records_chain_link BEFORE INSERT ON records
WHEN NEW.seq IS NOT coalesce((SELECT seq FROM heads WHERE chain_key = NEW.chain_key), 0) + 1
  OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM heads WHERE chain_key = NEW.chain_key),
                                   '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN SELECT RAISE(ABORT, 'evidence chain fork refused: record does not extend the chain head'); END;
CREATE TRIGGER IF NOT EXISTS records_advance_head AFTER INSERT ON records
BEGIN
  INSERT OR IGNORE INTO heads (chain_key, seq, hash) VALUES (NEW.chain_key, 0, '');
  UPDATE heads SET seq = NEW.seq, hash = NEW.hash WHERE chain_key = NEW.chain_key;
END;
CREATE TRIGGER IF NOT EXISTS heads_forward_only BEFORE UPDATE ON heads
WHEN NEW.seq IS NOT OLD.seq + 1 OR NEW.chain_key IS NOT OLD.chain_key
BEGIN SELECT RAISE(ABORT, 'evidence chain heads only move forward'); END;
CREATE TRIGGER IF NOT EXISTS heads_no_delete BEFORE DELETE ON heads
BEGIN SELECT RAISE(ABORT, 'evidence chain heads cannot be deleted'); END;
CREATE INDEX IF NOT EXISTS records_stack_time ON records (stack, started_at);
CREATE INDEX IF NOT EXISTS records_env_time ON records (environment, started_at);
CREATE INDEX IF NOT EXISTS records_actor_time ON records (actor, started_at);
CREATE INDEX IF NOT EXISTS records_kind_time ON records (kind, started_at);
CREATE INDEX IF NOT EXISTS records_class_time ON records (change_class, started_at);
CREATE INDEX IF NOT EXISTS records_time ON records (started_at);
CREATE INDEX IF NOT EXISTS records_break_glass ON records (started_at) WHERE break_glass = 1;
CREATE INDEX IF NOT EXISTS records_violations ON records (started_at) WHERE has_violations = 1;
"""

# every indexed column (in ``COLUMNS`` order, ``seq`` as ``sequence``) plus the document and its envelope
_COLUMNS = ", ".join(c if c != "sequence" else "seq" for c in COLUMNS) + ", document, envelope"


class SqliteStore(EvidenceStore):
    consistent_snapshots = True

    def __init__(self, path: Path, *, read_only: bool = False, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.url = f"sqlite://{path}"
        self.read_only = read_only
        try:
            if read_only:
                if not path.exists():
                    raise StoreError(f"evidence store {path} does not exist")
                self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=60)
            else:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                new = not path.exists()
                self._con = sqlite3.connect(str(path), isolation_level=None, timeout=60)
                if new:
                    os.chmod(path, 0o600)
                self._con.execute("PRAGMA journal_mode=WAL")
                self._con.execute(f"PRAGMA synchronous={synchronous}")
                self._con.execute("PRAGMA busy_timeout=60000")
                self._ensure_schema()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open evidence store {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot open evidence store {path}: {exc.strerror}") from exc

    @classmethod
    def from_url(cls, url: str, read_only: bool = False) -> "SqliteStore":
        # sqlite:///abs/path (and SQLAlchemy's sqlite:////abs/path); ?mode=ro opens read-only
        rest, _, query = url[len("sqlite:"):].partition("?")
        if not rest.startswith("///"):
            raise InputError("sqlite store URL must be sqlite:///absolute/path")
        raw = "/" + unquote(rest).lstrip("/")
        if raw == "/":
            raise InputError("sqlite store URL has no path (use sqlite:///absolute/path)")
        ro = read_only or "mode=ro" in query
        return cls(Path(raw), read_only=ro)

    def _ensure_schema(self) -> None:
        if self._con.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return  # created before: skip re-running the DDL on every open (one `pulumi up` opens once)
        for attempt in range(50):
            try:
                self._con.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
                return
            except sqlite3.OperationalError as exc:  # another process creating it at the same moment
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.05)

    def append(self, record: EvidenceRecord, signer: Signer) -> StoredRecord:
        return self.append_many([record], signer)[0]

    def append_many(self, records: Iterable[EvidenceRecord], signer: Signer) -> list[StoredRecord]:
        """Append records in order in ONE transaction: the same checks, sealing and rows as ``append`` one at a time
        (a spool flush, a migration, a benchmark population), without a commit per record."""
        if self.read_only:
            raise StoreError(f"evidence store {self.path} is open read-only")
        records = [validated_record(r) for r in records]
        con = self._con
        out: list[StoredRecord] = []
        try:
            con.execute("BEGIN IMMEDIATE")  # the write lock before reading the head: no fork, no lost link
            try:
                fresh = []
                for record in records:
                    stored, new = self._append_locked(con, record, signer)
                    out.append(stored)
                    if new:
                        fresh.append(stored)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"evidence store {self.path} refused the append: {exc}") from exc
        self._appended(fresh, signer)
        return out

    @staticmethod
    def _append_locked(con: sqlite3.Connection, record: EvidenceRecord, signer: Signer) -> tuple[StoredRecord, bool]:
        """(the stored record, whether this call appended it)."""
        existing = con.execute("SELECT document, envelope FROM records WHERE record_id = ?",
                               (record.record_id,)).fetchone()
        if existing:  # idempotent by record ID
            return StoredRecord(document=json.loads(existing[0]), envelope=json.loads(existing[1])), False
        head = con.execute("SELECT seq, hash FROM heads WHERE chain_key = ?", (record.chain_key,)).fetchone()
        seq, prev = head if head else (0, None)
        stored = seal(record, signer, record.chain_key, seq, prev)
        facts = document_facts(stored.document)
        con.execute(
            "INSERT INTO records (record_id, chain_key, seq, prev_hash, hash, kind, stack, environment,"
            " change_class, actor, started_at, break_glass, has_violations, document, envelope)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (facts.record_id, facts.chain_key, stored.sequence, stored.prev_hash, stored.hash, facts.kind,
             facts.stack, facts.environment, facts.change_class, facts.actor, facts.started_at,
             int(facts.break_glass), int(facts.has_violations),
             json.dumps(stored.document, sort_keys=True, separators=(",", ":")),
             json.dumps(stored.envelope, sort_keys=True, separators=(",", ":"))))
        return stored, True

    def get(self, record_id: str) -> StoredRecord | None:
        rows = self._fetch(f"SELECT {_COLUMNS} FROM records WHERE record_id = ?", (record_id,))
        return _row(rows[0]) if rows else None

    def contains(self, record_id: str) -> bool:
        return bool(self._fetch("SELECT 1 FROM records WHERE record_id = ?", (record_id,)))

    def _select(self, q: Query) -> list[StoredRecord]:
        sql, args = sql_select(f"SELECT {_COLUMNS} FROM records", q, "?", like_escape=" ESCAPE '\\'",
                               bools_as_int=True)
        return [_row(r) for r in self._fetch(sql, args)]

    def select_rows(self, q: Query, *, documents: bool = False) -> list[tuple]:
        cols = _COLUMNS if documents else _COLUMNS.rsplit(", document, envelope", 1)[0]
        sql, args = sql_select(f"SELECT {cols} FROM records", q, "?", like_escape=" ESCAPE '\\'",
                               bools_as_int=True)
        return self._fetch(sql, args)

    def iter_chain(self, chain: str, after: int = 0) -> Iterator[StoredRecord]:
        for row in self._iter(f"SELECT {_COLUMNS} FROM records WHERE chain_key = ? AND seq > ? ORDER BY seq",
                              (chain, after)):
            yield _row(row)

    def record_at(self, chain: str, sequence: int) -> StoredRecord | None:
        rows = self._fetch(f"SELECT {_COLUMNS} FROM records WHERE chain_key = ? AND seq = ?", (chain, sequence))
        return _row(rows[0]) if rows else None

    def iter_all(self, stack: str | None = None) -> Iterator[StoredRecord]:
        if stack:
            rows = self._iter(f"SELECT {_COLUMNS} FROM records WHERE chain_key = ? ORDER BY seq", (stack,))
        else:
            rows = self._iter(f"SELECT {_COLUMNS} FROM records ORDER BY chain_key, seq")
        for row in rows:
            yield _row(row)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: in WAL mode every read inside sees the same committed state."""
        if self._con.in_transaction:
            yield
            return
        self._exec("BEGIN")
        try:
            yield
        finally:
            if self._con.in_transaction:
                self._con.execute("COMMIT")

    def chain_keys(self) -> list[str]:
        rows = self._fetch("SELECT DISTINCT chain_key FROM records UNION SELECT chain_key FROM heads")
        return sorted(k for (k,) in rows)

    def heads(self) -> dict[str, tuple[int, str]]:
        return {k: (s, h) for k, s, h in self._fetch("SELECT chain_key, seq, hash FROM heads")}

    def count(self) -> int:
        return self._fetch("SELECT count(*) FROM records")[0][0]

    def _exec(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        try:
            return self._con.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"evidence store {self.path}: {exc}") from exc

    def _fetch(self, sql: str, args: Any = ()) -> list[tuple]:
        """Every row of a SELECT. Text that is not UTF-8 (whoever can write the file can put any bytes in a column)
        is read again with its bad bytes kept as surrogates, so the checks name the row instead of the read
        failing for the whole store."""
        try:
            return self._con.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            self._undecodable(exc)
        return self._exec(sql, args).fetchall()

    def _iter(self, sql: str, args: Any = ()) -> Iterator[tuple]:
        """The rows of a SELECT one at a time (memory stays flat), read again leniently as ``_fetch`` does."""
        done = 0
        try:
            for row in self._con.execute(sql, args):
                done += 1
                yield row
            return
        except sqlite3.Error as exc:
            self._undecodable(exc)
        for i, row in enumerate(self._exec(sql, args)):
            if i >= done:
                yield row

    def _undecodable(self, exc: sqlite3.Error) -> None:
        """Switch to lenient text decoding for a decoding error (once); StoreError for anything else."""
        if not (isinstance(exc, sqlite3.OperationalError) and "decode" in str(exc)) \
                or self._con.text_factory is _lenient_text:
            raise StoreError(f"evidence store {self.path}: {exc}") from exc
        self._con.text_factory = _lenient_text

    def close(self) -> None:
        super().close()
        self._con.close()


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _row(row: tuple) -> StoredRecord:
    return decoded_row(row, len(COLUMNS))


def open_url(url: str, settings: Any = None) -> SqliteStore:
    """The registry's opener for ``sqlite:`` URLs."""
    return SqliteStore.from_url(url)
