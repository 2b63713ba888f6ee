"""``postgresql://writer@host:port/db``: PostgreSQL (psycopg 3), append-only by privileges *and* triggers.

:func:`install_schema` (run once by the schema owner) creates schema ``ps019_evidence`` with ``records`` and
``heads``; the writer role gets only USAGE + SELECT + INSERT (records) and SELECT (heads); auditor roles get SELECT.
Triggers refuse UPDATE/DELETE/TRUNCATE of records, refuse an INSERT that does not extend its chain's head (so even a
writer that skips the lock cannot fork a chain), and move the head forward only (SECURITY DEFINER, so the writer
cannot touch ``heads`` directly). Appends run in one transaction under a per-chain advisory lock
(``pg_advisory_xact_lock``: a writer with only INSERT cannot ``LOCK TABLE`` or ``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterable, Any, Iterator
from urllib.parse import urlsplit

from ps019.errors import StoreError
from ps019.evidence.record import EvidenceRecord
from ps019.evidence.signing import Signer
from ps019.evidence.sql import sql_select
from ps019.evidence.store import (COLUMNS, EvidenceStore, Query, StoredRecord, decoded_row, document_facts, seal,
                                  validated_record)

SCHEMA = "ps019_evidence"
# every indexed column (in ``COLUMNS`` order, ``seq`` as ``sequence``) plus the document and its envelope
_COLUMNS = ", ".join(c if c != "sequence" else "seq" for c in COLUMNS) + ", document, envelope"

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.records (
  id bigserial PRIMARY KEY,
  record_id text NOT NULL UNIQUE,
  chain_key text NOT NULL,
  seq bigint NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL UNIQUE,
  kind text NOT NULL,
  stack text NOT NULL,
  environment text NOT NULL,
  change_class text,
  actor text,
  started_at text NOT NULL,
  break_glass boolean NOT NULL,
  has_violations boolean NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  document text NOT NULL,
  envelope text NOT NULL,
  UNIQUE (chain_key, seq)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.heads (
  chain_key text PRIMARY KEY,
  seq bigint NOT NULL,
  hash text NOT NULL
);
CREATE INDEX IF NOT EXISTS records_stack_time ON {SCHEMA}.records (stack, started_at);
CREATE INDEX IF NOT EXISTS records_env_time ON {SCHEMA}.records (environment, started_at);
CREATE INDEX IF NOT EXISTS records_actor_time ON {SCHEMA}.records (actor, started_at);
CREATE INDEX IF NOT EXISTS records_kind_time ON {SCHEMA}.records (kind, started_at);
CREATE INDEX IF NOT EXISTS records_class_time ON {SCHEMA}.records (change_class, started_at);
CREATE INDEX IF NOT EXISTS records_time ON {SCHEMA}.records (started_at);
CREATE INDEX IF NOT EXISTS records_break_glass ON {SCHEMA}.records (started_at) WHERE break_glass;
CREATE INDEX IF NOT EXISTS records_violations ON {SCHEMA}.records (started_at) WHERE has_violations;

CREATE OR REPLACE FUNCTION {SCHEMA}.forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'evidence % is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION {SCHEMA}.extend_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {SCHEMA}, pg_temp AS $$
DECLARE head_seq bigint; head_hash text;
BEGIN
  SELECT h.seq, h.hash INTO head_seq, head_hash FROM {SCHEMA}.heads h WHERE h.chain_key = NEW.chain_key;
  IF NEW.seq IS DISTINCT FROM coalesce(head_seq, 0) + 1
     OR NEW.prev_hash IS DISTINCT FROM coalesce(head_hash, repeat('0', 64)) THEN
    RAISE EXCEPTION 'evidence chain fork refused: record does not extend the head of %', NEW.chain_key
      USING ERRCODE = 'serialization_failure';
  END IF;
  INSERT INTO {SCHEMA}.heads (chain_key, seq, hash) VALUES (NEW.chain_key, NEW.seq, NEW.hash)
    ON CONFLICT (chain_key) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION {SCHEMA}.heads_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq IS DISTINCT FROM OLD.seq + 1 OR NEW.chain_key IS DISTINCT FROM OLD.chain_key THEN
    RAISE EXCEPTION 'evidence chain heads only move forward' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS records_no_update_delete ON {SCHEMA}.records;
CREATE TRIGGER records_no_update_delete BEFORE UPDATE OR DELETE ON {SCHEMA}.records
  FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.forbid_change();
DROP TRIGGER IF EXISTS records_no_truncate ON {SCHEMA}.records;
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON {SCHEMA}.records
  FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.forbid_change();
DROP TRIGGER IF EXISTS records_extend_chain ON {SCHEMA}.records;
CREATE TRIGGER records_extend_chain BEFORE INSERT ON {SCHEMA}.records
  FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.extend_chain();
DROP TRIGGER IF EXISTS heads_forward ON {SCHEMA}.heads;
CREATE TRIGGER heads_forward BEFORE UPDATE ON {SCHEMA}.heads
  FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.heads_forward_only();
DROP TRIGGER IF EXISTS heads_no_delete ON {SCHEMA}.heads;
CREATE TRIGGER heads_no_delete BEFORE DELETE ON {SCHEMA}.heads
  FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.forbid_change();
DROP TRIGGER IF EXISTS heads_no_truncate ON {SCHEMA}.heads;
CREATE TRIGGER heads_no_truncate BEFORE TRUNCATE ON {SCHEMA}.heads
  FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.forbid_change();

REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM PUBLIC;
REVOKE ALL ON FUNCTION {SCHEMA}.extend_chain() FROM PUBLIC;
"""


def install_schema(owner_dsn: str, writer_role: str, reader_roles: tuple[str, ...] = ()) -> None:
    """Create (idempotently) the schema as the connected owner and grant the writer INSERT/SELECT only."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(owner_dsn, autocommit=True) as con:
        con.execute(DDL)
        w = sql.Identifier(writer_role)
        for stmt in (
            "GRANT USAGE ON SCHEMA {s} TO {r}",
            "GRANT SELECT, INSERT ON {s}.records TO {r}",
            "GRANT USAGE ON SEQUENCE {s}.records_id_seq TO {r}",
            "GRANT SELECT ON {s}.heads TO {r}",
        ):
            con.execute(sql.SQL(stmt).format(s=sql.Identifier(SCHEMA), r=w))
        for reader in reader_roles:
            r = sql.Identifier(reader)
            con.execute(sql.SQL("GRANT USAGE ON SCHEMA {s} TO {r}").format(s=sql.Identifier(SCHEMA), r=r))
            con.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}").format(
                s=sql.Identifier(SCHEMA), r=r))


def _where(dsn: str) -> str:
    """host:port/db of a DSN, never its credentials."""
    try:
        parts = urlsplit(dsn)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"
    except ValueError:
        return "<unparsable DSN>"


class PostgresStore(EvidenceStore):
    consistent_snapshots = True

    def __init__(self, dsn: str, connect_timeout: float = 5.0) -> None:
        import psycopg

        self.where = _where(dsn)
        self.url = f"postgresql://{self.where}"
        try:
            self._con = psycopg.connect(dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout)))
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL evidence store {self.where} unreachable: {_first_line(exc)}") from exc

    @classmethod
    def from_url(cls, url: str, connect_timeout: float = 5.0) -> "PostgresStore":
        return cls(url, connect_timeout=connect_timeout)

    def _run(self, fn):
        import psycopg

        try:
            return fn(self._con)
        except psycopg.errors.UndefinedTable as exc:
            raise StoreError(f"PostgreSQL evidence store {self.where}: schema {SCHEMA} is not installed "
                             "(ps019.evidence.pg_store.install_schema)") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL evidence store {self.where}: {_first_line(exc)}") from exc

    def append(self, record: EvidenceRecord, signer: Signer) -> StoredRecord:
        return self.append_many([record], signer)[0]

    def append_many(self, records: Iterable[EvidenceRecord], signer: Signer) -> list[StoredRecord]:
        """Append records in order in ONE transaction: the same lock, checks, sealing and rows as ``append`` one at a
        time (spool flush, migration, benchmark population)."""
        records = [validated_record(r) for r in records]

        fresh: list[StoredRecord] = []

        def tx(con):
            fresh.clear()
            with con.transaction():
                locked: set[str] = set()
                out = []
                for record in records:
                    if record.chain_key not in locked:  # per-chain lock held to the end of the transaction
                        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7274))", (record.chain_key,))
                        locked.add(record.chain_key)
                    stored, new = self._append_locked(con, record, signer)
                    out.append(stored)
                    if new:
                        fresh.append(stored)
                return out

        out = self._run(tx)
        self._appended(fresh, signer)
        return out

    @staticmethod
    def _append_locked(con: Any, record: EvidenceRecord, signer: Signer) -> tuple[StoredRecord, bool]:
        """(the stored record, whether this call appended it)."""
        row = con.execute(f"SELECT document, envelope FROM {SCHEMA}.records WHERE record_id = %s",
                          (record.record_id,)).fetchone()
        if row:  # idempotent by record ID
            return StoredRecord(document=json.loads(row[0]), envelope=json.loads(row[1])), False
        head = con.execute(f"SELECT seq, hash FROM {SCHEMA}.heads WHERE chain_key = %s",
                           (record.chain_key,)).fetchone()
        seq, prev = head if head else (0, None)
        stored = seal(record, signer, record.chain_key, seq, prev)
        f = document_facts(stored.document)
        con.execute(
            f"INSERT INTO {SCHEMA}.records (record_id, chain_key, seq, prev_hash, hash, kind, stack,"
            " environment, change_class, actor, started_at, break_glass, has_violations, document, envelope)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (f.record_id, f.chain_key, stored.sequence, stored.prev_hash, stored.hash, f.kind, f.stack,
             f.environment, f.change_class, f.actor, f.started_at, f.break_glass, f.has_violations,
             json.dumps(stored.document, sort_keys=True, separators=(",", ":")),
             json.dumps(stored.envelope, sort_keys=True, separators=(",", ":"))))
        return stored, True

    def get(self, record_id: str) -> StoredRecord | None:
        row = self._run(lambda c: c.execute(f"SELECT {_COLUMNS} FROM {SCHEMA}.records WHERE record_id = %s",
                                            (record_id,)).fetchone())
        return _row(row) if row else None

    def _select(self, q: Query) -> list[StoredRecord]:
        sql, args = sql_select(f"SELECT {_COLUMNS} FROM {SCHEMA}.records", q, "%s")
        return [_row(r) for r in self._run(lambda c: c.execute(sql, args).fetchall())]

    def select_rows(self, q: Query, *, documents: bool = False) -> list[tuple]:
        cols = _COLUMNS if documents else _COLUMNS.rsplit(", document, envelope", 1)[0]
        sql, args = sql_select(f"SELECT {cols} FROM {SCHEMA}.records", q, "%s")
        return self._run(lambda c: c.execute(sql, args).fetchall())

    def record_at(self, chain: str, sequence: int) -> StoredRecord | None:
        row = self._run(lambda c: c.execute(f"SELECT {_COLUMNS} FROM {SCHEMA}.records WHERE chain_key = %s AND "
                                            "seq = %s", (chain, sequence)).fetchone())
        return _row(row) if row else None

    def iter_chain(self, chain: str, after: int = 0) -> Iterator[StoredRecord]:
        return self._stream(f"SELECT {_COLUMNS} FROM {SCHEMA}.records WHERE chain_key = %s AND seq > %s ORDER BY seq",
                            (chain, after))

    def iter_all(self, stack: str | None = None) -> Iterator[StoredRecord]:
        if stack:
            return self.iter_chain(stack)
        return self._stream(f"SELECT {_COLUMNS} FROM {SCHEMA}.records ORDER BY chain_key, seq", ())

    def _stream(self, sql: str, args: tuple) -> Iterator[StoredRecord]:
        # a server-side cursor keeps memory flat over a million rows
        import psycopg

        try:
            with self._con.transaction(), self._con.cursor(name="ps019_iter_all") as cur:
                cur.itersize = 2000
                cur.execute(sql, args)
                for row in cur:
                    yield _row(row)
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL evidence store {self.where}: {_first_line(exc)}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A REPEATABLE READ transaction: every read inside sees one snapshot."""
        if self._con.info.transaction_status != 0:  # already inside one
            yield
            return
        with self._con.transaction():
            self._run(lambda c: c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            yield

    def chain_keys(self) -> list[str]:
        rows = self._run(lambda c: c.execute(f"SELECT DISTINCT chain_key FROM {SCHEMA}.records UNION "
                                             f"SELECT chain_key FROM {SCHEMA}.heads").fetchall())
        return sorted(k for (k,) in rows)

    def heads(self) -> dict[str, tuple[int, str]]:
        rows = self._run(lambda c: c.execute(f"SELECT chain_key, seq, hash FROM {SCHEMA}.heads").fetchall())
        return {k: (int(s), h) for k, s, h in rows}

    def count(self) -> int:
        return self._run(lambda c: c.execute(f"SELECT count(*) FROM {SCHEMA}.records").fetchone()[0])

    def close(self) -> None:
        super().close()
        try:
            self._con.close()
        except Exception:  # noqa: BLE001
            pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _row(row: tuple) -> StoredRecord:
    return decoded_row(row, len(COLUMNS))


def open_url(url: str, settings: Any = None) -> PostgresStore:
    """The registry's opener for ``postgresql://`` and ``postgres://`` URLs."""
    return PostgresStore.from_url(url, connect_timeout=getattr(settings, "connect_timeout_s", 5.0))
