"""A reader's verified index: complete, verified answers to filtered queries, at index speed.

Every record a reader has verified -- Ed25519 signature by a trusted key, document equal to what was signed, record
hash, chain link to its predecessor, every indexed column -- is kept in a local sqlite file *outside the store*, in
the reader's own data directory (``<data dir>/verified/``, one file per store URL and trusted key set):

* its facts (the indexed columns and the few fields a ``list`` shows), computed from the signed document;
* a SHA-256 of the row's stored bytes, so a later read of the same row needs a hash compare, not a signature check;
* per chain, the (sequence, hash) the reader verified up to.

Before every answer the index is brought up to the store's chain heads: only records appended since are verified
(so a warm query costs one read of the heads), and a chain whose head is now *behind* (or differs from) what this
reader verified is refused as a rollback. Answers then come from the verified facts, never from the store's own
columns -- and the store's columns are cross-checked against them for every row in the answer's window, so an
edited filter column (``break_glass`` flipped to 0, a ``kind`` changed) is reported, naming the record and the
column, instead of silently hiding or adding a record. Full records are read from the store and must be
byte-identical to what was verified (or verify again in full).

What the index trusts: its own file. It lives with the reader's account (0700 directory, 0600 files), never in the
store, so whoever can write the store cannot poison it; whoever can write the reader's home directory could (as they
could replace the reader's tools). ``ps019 evidence verify`` never reads it: it verifies every record again and
then brings the index up to date.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from ps019.errors import InputError, IntegrityError, StoreError
from ps019.evidence.chain import record_problems
from ps019.evidence.integrity import short
from ps019.evidence.paths import default_data_dir
from ps019.evidence.record import format_utc
from ps019.evidence.sql import sql_select
from ps019.evidence.store import (COLUMNS, GENESIS_HASH, EvidenceStore, Query, StoredRecord,
                                  expected_columns, head_problem, link_problem, raw_digest, record_summary, row_label)

ENV_INDEX_DIR = "PS019_VERIFIED_INDEX_DIR"  # a directory, or "memory" (verify again in every process)
INDEX_VERSION = 1
_N = len(COLUMNS)
_EXTRA = ("outcome", "violations", "break_glass_ref", "digest")
_ALL = COLUMNS + _EXTRA
_ALL_SQL = ", ".join("seq" if c == "sequence" else c for c in _ALL)  # the index's columns, named as in the store
_ORDER = "started_at DESC, chain_key DESC, seq DESC"
_BATCH = 2000
NOTICE_AFTER = 5000  # a refresh that must verify this many records says so first

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chains (chain_key TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL,
                                   verified_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
  record_id TEXT PRIMARY KEY, chain_key TEXT NOT NULL, seq INTEGER NOT NULL, prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL, kind TEXT NOT NULL, stack TEXT NOT NULL, environment TEXT NOT NULL, change_class TEXT,
  actor TEXT, started_at TEXT NOT NULL, break_glass INTEGER NOT NULL, has_violations INTEGER NOT NULL,
  outcome TEXT, violations INTEGER NOT NULL, break_glass_ref TEXT, digest TEXT NOT NULL,
  UNIQUE (chain_key, seq));
CREATE INDEX IF NOT EXISTS v_stack_time ON records (stack, started_at);
CREATE INDEX IF NOT EXISTS v_env_time ON records (environment, started_at);
CREATE INDEX IF NOT EXISTS v_actor_time ON records (actor, started_at);
CREATE INDEX IF NOT EXISTS v_kind_time ON records (kind, started_at);
CREATE INDEX IF NOT EXISTS v_class_time ON records (change_class, started_at);
CREATE INDEX IF NOT EXISTS v_time ON records (started_at);
CREATE INDEX IF NOT EXISTS v_break_glass ON records (started_at) WHERE break_glass = 1;
CREATE INDEX IF NOT EXISTS v_violations ON records (started_at) WHERE has_violations = 1;
PRAGMA user_version = {INDEX_VERSION};
"""


def index_dir(directory: str | Path | None = None) -> Path | None:
    """Where verified indexes live: ``directory`` -> ``$PS019_VERIFIED_INDEX_DIR`` -> ``<data dir>/verified``;
    None for ``memory`` (an in-process index, rebuilt by every command)."""
    chosen = str(directory or os.environ.get(ENV_INDEX_DIR) or default_data_dir() / "verified")
    return None if chosen == "memory" else Path(chosen).expanduser()


def index_name(store_url: str, keyids: Iterable[str]) -> str:
    """One index per store and trusted key set: verifying with other keys never reuses these answers."""
    ident = store_url + "\n" + ",".join(sorted(keyids))
    return hashlib.sha256(ident.encode()).hexdigest()[:32] + ".db"


class VerifiedIndex:
    def __init__(self, path: Path | None, store_url: str, keys: Mapping[str, Any]) -> None:
        if not keys:
            raise InputError("a verified index needs the public keys records must be signed by")
        self.path = path
        self.store_url = store_url
        self.keys = dict(keys)
        self.notice: Callable[[int], None] | None = None  # told how many records a refresh must verify, if many
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
            self._con = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None, timeout=60)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.execute("PRAGMA busy_timeout=60000")
            self._ensure_schema()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the verified index {path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot open the verified index {path}: {exc.strerror}") from None

    @classmethod
    def for_store(cls, store: EvidenceStore, keys: Mapping[str, Any] | None = None,
                  directory: str | Path | None = None) -> "VerifiedIndex":
        """The index for ``store`` under ``keys`` (default: the keys the store trusts)."""
        keys = dict(keys if keys is not None else (store.trusted_keys or {}))
        where = index_dir(directory)
        path = where / index_name(store.url, keys) if where is not None else None
        return cls(path, store.url, keys)

    def _ensure_schema(self) -> None:
        con = self._con
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, INDEX_VERSION):  # written by another ps019 version: rebuild from the store
            for table in ("meta", "chains", "records"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
        con.executescript(_SCHEMA)
        ident = {"store": self.store_url, "keys": ",".join(sorted(self.keys))}
        for k, v in ident.items():
            con.execute("INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)", (k, v))
        stored = dict(con.execute("SELECT k, v FROM meta").fetchall())
        if any(stored.get(k) != v for k, v in ident.items()):
            raise IntegrityError(f"verified index {self.path} belongs to another store or key set; remove it")

    def close(self) -> None:
        try:
            self._con.close()
        except sqlite3.Error:
            pass

    # --- bringing the index up to the store's heads --------------------------------------------------------------

    def verified_heads(self) -> dict[str, tuple[int, str]]:
        return {c: (s, h) for c, s, h in self._con.execute("SELECT chain_key, seq, hash FROM chains")}

    def refresh(self, store: EvidenceStore, anchors: Mapping[str, tuple[int, str]] | None = None) -> int:
        """Verify every record appended since this reader last looked (returns how many). IntegrityError, naming
        the record and field or the chain, for a record that fails any check and for a chain that is now behind, or
        differs from, what was verified before or what a signed checkpoint (``anchors``) attests."""
        heads = store.heads()
        known = self.verified_heads()
        behind = sum(seq - known.get(chain, (0, ""))[0] for chain, (seq, _) in heads.items())
        if self.notice is not None and behind >= NOTICE_AFTER:
            self.notice(behind)
        added = 0
        for chain in sorted(set(known) | set(heads)):
            have, head = known.get(chain), heads.get(chain)
            if have is not None:
                if head is None or head[0] < have[0]:
                    raise IntegrityError(_rolled_back(chain, have, head, self.path))
                if head[0] == have[0]:
                    if head[1] != have[1]:
                        raise IntegrityError(f"evidence chain {chain}: the store's head at sequence {head[0]} differs "
                                             "from the record this reader verified there: the chain was rewritten "
                                             "(rollback or restored backup); refusing to use the store")
                    continue
            added += self._extend(store, chain, head)
        if anchors:
            self._check_anchors(anchors)
        return added

    def _extend(self, store: EvidenceStore, chain: str, head: tuple[int, str]) -> int:
        con = self._con
        con.execute("BEGIN IMMEDIATE")  # one refresher per chain at a time; others see the result
        try:
            row = con.execute("SELECT seq, hash FROM chains WHERE chain_key = ?", (chain,)).fetchone()
            last = (int(row[0]), row[1]) if row else (0, GENESIS_HASH)
            added = 0
            if last[0] < head[0]:
                batch: list[tuple] = []
                for stored in store.iter_chain(chain, last[0]):
                    _raise_for(stored, chain, last, self.keys)
                    batch.append(verified_row(stored))
                    last = (stored.sequence, stored.hash)
                    if len(batch) >= _BATCH:
                        added += self._insert(batch)
                        batch = []
                added += self._insert(batch)
                if last[0] > head[0]:  # appended while we read: the head has moved on since (or was rewound)
                    head = store.heads().get(chain, head)
                problem = head_problem(chain, last, head)
                if problem:
                    raise IntegrityError(f"evidence chain {chain}: {problem[1]}; refusing to use the store")
                con.execute("INSERT INTO chains (chain_key, seq, hash, verified_at) VALUES (?, ?, ?, ?) ON CONFLICT "
                            "(chain_key) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                            "verified_at = excluded.verified_at", (chain, last[0], last[1], _now()))
            con.execute("COMMIT")
            return added
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    def _insert(self, rows: list[tuple]) -> int:
        if not rows:
            return 0
        try:
            self._con.executemany(f"INSERT INTO records ({_ALL_SQL}) VALUES ({', '.join('?' * len(_ALL))})",
                                  rows)
        except sqlite3.IntegrityError:
            for r in rows:
                other = self._con.execute("SELECT chain_key, seq FROM records WHERE record_id = ?",
                                          (r[0],)).fetchone()
                if other:
                    raise IntegrityError(f"evidence record {r[0]}: field record_id: appears twice, in chain {r[1]} "
                                         f"#{r[2]} and chain {other[0]} #{other[1]}; refusing to use the store") \
                        from None
            raise
        return len(rows)

    def _check_anchors(self, anchors: Mapping[str, tuple[int, str]]) -> None:
        for chain, (seq, digest) in sorted(anchors.items()):
            have = self._con.execute("SELECT hash FROM records WHERE chain_key = ? AND seq = ?",
                                     (chain, int(seq))).fetchone()
            if have is None:
                raise IntegrityError(f"evidence chain {chain}: a signed checkpoint attests sequence {seq} but the "
                                     "store does not hold it: truncated, head rewound or rolled back; refusing to "
                                     "use the store")
            if have[0] != digest:
                raise IntegrityError(f"evidence chain {chain}: the record at sequence {seq} differs from the one a "
                                     "signed checkpoint attests: the chain was rewritten; refusing to use the store")

    @contextmanager
    def recording(self) -> Iterator[Callable[[StoredRecord], None]]:
        """What ``verify`` uses: ``add(stored)`` for each record that passed every check, in chain order from each
        chain's start. On leaving, the verified prefix of each chain is stored (chains the index already holds
        further are left as they are). One transaction: a failed verify leaves the index unchanged."""
        con = self._con
        known = self.verified_heads()
        reached: dict[str, tuple[int, str]] = {}
        batch: list[tuple] = []

        def add(stored: StoredRecord) -> None:
            chain = stored.chain_key
            if stored.sequence <= known.get(chain, (0, ""))[0]:
                return
            batch.append(verified_row(stored))
            reached[chain] = (stored.sequence, stored.hash)
            if len(batch) >= _BATCH:
                self._insert(batch)
                batch.clear()

        con.execute("BEGIN IMMEDIATE")
        try:
            yield add
            self._insert(batch)
            for chain, (seq, digest) in reached.items():
                con.execute("INSERT INTO chains (chain_key, seq, hash, verified_at) VALUES (?, ?, ?, ?) ON CONFLICT "
                            "(chain_key) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                            "verified_at = excluded.verified_at", (chain, seq, digest, _now()))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    # --- answers -------------------------------------------------------------------------------------------------

    def _select(self, q: Query) -> list[tuple]:
        sql, args = sql_select(f"SELECT {_ALL_SQL} FROM records", q, "?", like_escape=" ESCAPE '\\'",
                               bools_as_int=True, order=_ORDER)
        return self._con.execute(sql, args).fetchall()

    def _answer(self, store: EvidenceStore, q: Query, documents: bool) -> tuple[list[tuple], dict[str, tuple]]:
        """(the verified rows answering ``q``, newest first; the store's rows for them when ``documents``)."""
        try:
            return self._answer_once(store, q, documents)
        except _Unverified:  # a record appended since the refresh: verify it too, then answer again
            return self._answer_once(store, q, documents, strict=True)

    def _answer_once(self, store: EvidenceStore, q: Query, documents: bool, strict: bool = False
                     ) -> tuple[list[tuple], dict[str, tuple]]:
        self.refresh(store, _anchors(store, self.keys))
        rows = self._select(q)
        window_q = replace(q, limit=None)
        window = rows
        if q.limit and len(rows) >= q.limit:  # the store must agree on everything down to the last row returned
            window_q = replace(window_q, started_from=max(q.started_from or "", rows[-1][COLUMNS.index("started_at")]))
            window = self._select(window_q)
        theirs = store.select_rows(window_q, documents=documents)
        if theirs is None:  # no indexed columns to cross-check (S3): the records are read by their key
            return rows, {}
        self._cross_check(store, window, theirs, documents, strict)
        return rows, {r[0]: r for r in theirs} if documents else {}

    def _cross_check(self, store: EvidenceStore, window: list[tuple], theirs: list[tuple], documents: bool,
                     strict: bool = True) -> None:
        """Every store row of the window is a verified row with the same columns, and every verified row of the
        window is among the store's (a bool column equals its 0/1 form: ``True == 1``)."""
        mine = {r[0]: r for r in window}
        if len(mine) == len(theirs):  # the common case, at C speed: the same rows with the same columns
            if documents:
                if all(mine.get(t[0], ())[:_N] == t[:_N] for t in theirs):
                    return
            elif all(mine.get(t[0], ())[:_N] == t for t in theirs):
                return
        seen: set[str] = set()
        for full in theirs:
            row = full[:_N]
            rid = row[0]
            if rid in seen:
                raise IntegrityError(f"evidence record {rid}: field record_id: the store holds it twice; refusing "
                                     "to use it -- run `ps019 evidence verify` for every problem in the store")
            seen.add(rid)
            verified = mine.get(rid)
            if verified is None or row != verified[:_N]:
                known = verified or self._by_id(rid)
                if known is None and not strict:
                    raise _Unverified(rid)
                problem = _disagreement(rid, row, known, listed=verified is not None)
                if problem:
                    raise IntegrityError(problem)
        for rid in sorted(mine.keys() - seen):
            stored = store.get(rid)
            if stored is None:
                v = mine[rid]
                raise IntegrityError(f"evidence record {rid}: field record_id: verified earlier as chain {v[1]} "
                                     f"#{v[2]} but no longer in the store (deleted); refusing to use the store -- run "
                                     "`ps019 evidence verify` for every problem in the store")
            columns = tuple(int(c) if isinstance(c, bool) else c
                            for c in (stored.columns.get(name) for name in COLUMNS)) if stored.columns else ()
            problem = _disagreement(rid, columns, mine[rid], listed=False) if columns else None
            raise IntegrityError(problem or f"evidence record {rid}: field record_id: the store's selection left out "
                                            "a record whose signed document matches; refusing to use the store")

    def _by_id(self, record_id: str) -> tuple | None:
        return self._con.execute(f"SELECT {_ALL_SQL} FROM records WHERE record_id = ?",
                                 (record_id,)).fetchone()

    def query(self, store: EvidenceStore, q: Query) -> list[StoredRecord]:
        rows, raw = self._answer(store, q, documents=True)
        out = []
        for v in rows:
            rid = v[0]
            if raw:
                r = raw[rid]
                stored = StoredRecord(document=_loads(r[_N]), envelope=_loads(r[_N + 1]),
                                      columns=dict(zip(COLUMNS, r[:_N])), raw=(r[_N], r[_N + 1]))
            else:
                stored = store.record_at(v[1], v[2])
                if stored is None:
                    raise IntegrityError(f"evidence record {rid}: field record_id: verified earlier as chain {v[1]} "
                                         f"#{v[2]} but no longer in the store (deleted); refusing to use the store")
            out.append(self._same_as_verified(stored, v))
        return out

    def _same_as_verified(self, stored: StoredRecord, v: tuple) -> StoredRecord:
        """``stored`` if it is byte-identical to the row verified (a hash compare), or verifies again in full and is
        the same record; IntegrityError naming the record and field otherwise."""
        if stored.raw is not None and raw_digest(stored.raw) == v[-1]:
            return stored
        problems = list(record_problems(stored, self.keys))
        if not problems and (stored.hash != v[4] or stored.record_id != v[0]):
            problems.append(("edited", "hash", "differs from the record verified at this place in its chain"))
        if problems:
            _code, name, reason = problems[0]
            raise IntegrityError(f"evidence record {row_label(stored)}: field {name}: {reason}; refusing to use it -- "
                                 "run `ps019 evidence verify` for every problem in the store")
        return stored

    def summaries(self, store: EvidenceStore, q: Query) -> list[dict[str, Any]]:
        rows, _ = self._answer(store, q, documents=False)
        return [_summary(v) for v in rows]


class _Unverified(Exception):
    """The store lists a row the index has not verified (perhaps appended since the refresh)."""


def verified_row(stored: StoredRecord) -> tuple:
    """The index row of a record that passed every check: its columns from the signed document, the fields a list
    shows, and the digest of its stored bytes."""
    doc = stored.document
    want = expected_columns(doc)
    summary = record_summary(doc)
    digest = raw_digest(stored.raw) if stored.raw is not None else ""
    return (*(int(want[c]) if isinstance(want[c], bool) else want[c] for c in COLUMNS), summary["outcome"],
            summary["violations"], summary["break_glass"], digest)


def _summary(v: tuple) -> dict[str, Any]:
    """``record_summary`` of a verified row (the same dict, from the facts taken from its signed document)."""
    (record_id, chain_key, seq, _prev, record_hash, kind, stack, environment, change_class, actor, started_at, _bg, _hv,
     outcome, violations, bg_ref, _raw) = v
    return {"record_id": record_id, "kind": kind, "started_at": started_at, "stack": stack,
            "environment": environment, "change_class": change_class, "outcome": outcome, "actor": actor or "",
            "violations": violations, "break_glass": bg_ref, "chain": f"{chain_key}#{seq}", "hash": record_hash}


def _raise_for(stored: StoredRecord, chain: str, last: tuple[int, str], keys: Mapping[str, Any]) -> None:
    """IntegrityError naming the record and field when ``stored`` is not the verified next record of ``chain``."""
    problems = [(f, r) for _, f, r in record_problems(stored, keys)]
    if not problems and stored.chain_key != chain:
        problems.append(("chain_key", f"read from chain {chain} but signed for chain {stored.chain_key}"))
    if not problems:
        link = link_problem(last, stored)
        if link:
            problems.append(("prev_hash" if link[0] == "fork" else "sequence", link[1]))
    if problems:
        name, reason = problems[0]
        raise IntegrityError(f"evidence record {row_label(stored)}: field {name}: {reason}; refusing to use chain "
                             f"{chain} -- run `ps019 evidence verify` for every problem in the store")


def _disagreement(rid: str, theirs: tuple, verified: tuple | None, *, listed: bool) -> str | None:
    """Why the store's columns ``theirs`` for ``rid`` are not the verified ones (None when they agree)."""
    tail = "; refusing to use it -- run `ps019 evidence verify` for every problem in the store"
    if verified is None:
        chain = f"{theirs[1]} #{theirs[2]}" if len(theirs) > 2 else "?"
        return (f"evidence record {rid}: field chain_key: the store lists it (as chain {chain}) but it is not part of "
                f"any chain up to its recorded head, so it was never verified{tail}")
    for name, got, want in zip(COLUMNS, theirs, verified[:_N]):
        if got != want and not (got in (None, "") and want in (None, "")):
            if name in ("break_glass", "has_violations"):
                got, want = (bool(got) if got is not None else None), bool(want)
            effect = "" if listed else " (so the store's filter gave a different answer)"
            return (f"evidence record {rid}: field {name}: indexed column {name} is {short(got)} but the signed "
                    f"document says {short(want)}{effect}{tail}")
    return None


def _rolled_back(chain: str, have: tuple[int, str], head: tuple[int, str] | None, path: Path | None) -> str:
    now = f"its head is at sequence {head[0]}" if head else "it has no head for it any more"
    return (f"evidence chain {chain}: this reader verified it up to sequence {have[0]}, but {now}: records were "
            "removed or the store was rolled back; refusing to use the store (if the store was replaced on purpose, "
            f"remove the verified index {path or '(in memory)'})")


def _anchors(store: EvidenceStore, keys: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    witness = getattr(store, "witness", None)
    return witness.anchors(keys) if witness is not None else {}


def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return {}


def _now() -> str:
    return format_utc(datetime.now(timezone.utc))


__all__ = ["ENV_INDEX_DIR", "VerifiedIndex", "index_dir", "index_name", "verified_row"]
