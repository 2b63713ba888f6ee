"""Red team of the evidence store after issue 10, as whoever can WRITE the store (sqlite file, PostgreSQL schema owner,
PostgreSQL append-only writer, S3 principal with PutObject/DeleteObject on the store bucket) and, separately, as a
deployer who controls the text of their own records (user name, ticket, CI variables).

Each test is an attack. Those that broke before their fix are listed in docs/security-review.md ("Issue 10 red team:
the store writer"); the others pin a defence that had no test of its own."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from ps019.errors import IntegrityError
from ps019.evidence import Signer, open_store, verify_store
from tests.plugins.evidence import make_record
from tests.test_evidence_attacks import PgOwnerHands, SqliteHands

SIGNER = Signer.generate()
TRUST = {SIGNER.keyid: SIGNER.public_key}
STACK = "acme/payments/prod"


# --- the attacker's hands ----------------------------------------------------------------------------------------


class PgWriterHands:
    """The PostgreSQL append-only writer role (what the CI deploy job holds): INSERT and SELECT, nothing else."""

    def __init__(self, dsn):
        import psycopg

        from ps019.evidence.pg_store import SCHEMA

        self.records, self.heads = f"{SCHEMA}.records", f"{SCHEMA}.heads"
        self.con = psycopg.connect(dsn, autocommit=True)

    def sql(self, stmt, args=()):
        cur = self.con.execute(stmt, args)
        return cur.fetchall() if cur.description else []

    def junk_row(self, chain, seq, prev_hash, *, stack, kind="update", started_at="2999-01-01T00:00:00.000000Z",
                 document="{}"):
        """A row of the writer's own making; the INSERT trigger only asks that it extends ``chain``'s head."""
        import uuid

        self.sql(f"INSERT INTO {self.records} (record_id, chain_key, seq, prev_hash, hash, kind, stack, environment,"
                 " change_class, actor, started_at, break_glass, has_violations, document, envelope) VALUES"
                 " (%s,%s,%s,%s,%s,%s,%s,'production','normal',NULL,%s,false,false,%s,'{}')",
                 (str(uuid.uuid4()), chain, seq, prev_hash, uuid.uuid4().hex * 2, kind, stack, started_at, document))


def _s3_client():
    import boto3

    return boto3.client("s3", region_name="us-east-1")


BACKENDS = ["sqlite", pytest.param("pg_owner", marks=pytest.mark.postgres),
            pytest.param("pg_writer", marks=pytest.mark.postgres), "s3"]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """(name, store URL, the attacker's hands or None for S3)."""
    name = request.param
    if name == "sqlite":
        path = tmp_path / "evidence.db"
        return name, f"sqlite://{path}", lambda: SqliteHands(path)
    if name == "s3":
        return name, request.getfixturevalue("s3_evidence_url"), None
    pg = request.getfixturevalue("pg_evidence")
    if name == "pg_owner":
        return name, pg.writer_dsn, lambda: PgOwnerHands(pg.owner_dsn)
    return name, pg.writer_dsn, lambda: PgWriterHands(pg.writer_dsn)


def hide_record(name, url, hands, stored):
    """Make ``stored`` invisible to a query for its stack's updates, as each back end's attacker can."""
    if name in ("sqlite", "pg_owner"):  # an index column edit: the row is no longer an `update` of this time
        h = hands()
        h.sql(f"UPDATE {h.records} SET kind = %s, started_at = %s WHERE record_id = %s",
              ("preview", "2000-01-01T00:00:00.000000Z", stored.record_id))
    elif name == "s3":  # a delete marker: Object Lock keeps the locked version, but GET and LIST no longer see it
        with open_store(url) as store:
            _s3_client().delete_object(Bucket=store.bucket, Key=store._record_key(stored.chain_key, stored.sequence))
    else:  # the writer cannot edit or delete: it inserts a row that makes the lookup fail, hoping it fails open
        h = hands()
        h.junk_row("junk/junk/junk", 1, "0" * 64, stack=stored.document["organization"] + "/"
                   + stored.document["project"] + "/" + stored.document["stack"])


# --- 1. the pack's memory of earlier deployments: single-use requests, token and CI-run replay -------------------


def _pack_settings(issuer, tmp_path, url, **gate_over):
    from tests.test_gate_oidc import settings

    raw = settings(issuer, tmp_path, **gate_over)
    raw["evidence"] = {"store_url": url}
    return raw


def _the_update(url):
    with open_store(url) as store:
        return next(s for s in store.iter_all() if s.document["kind"] == "update")


def test_a_hidden_earlier_update_does_not_make_a_single_use_request_usable_again(backend, tmp_path):
    """Before: the single-use check selected the stack's updates by the store's columns (and returned nothing on any
    read error), so an edited ``kind``/``started_at``, an S3 delete marker or one junk row from the writer role let an
    approved single-use request deploy again."""
    from ps019.oidc.local_issuer import LocalIssuer
    from tests.test_gate_oidc import _deploy, change_request, gather, token, violations

    name, url, hands = backend
    issuer = LocalIssuer("https://token.actions.example.test")
    raw = _pack_settings(issuer, tmp_path, url, rules={"production": {"normal": {"singleUse": True}}})
    cr = change_request(tmp_path)
    first = _deploy(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="1"), "PS019_CHANGE_REQUEST": cr})
    assert first.decision.allowed, violations(first)
    hide_record(name, url, hands, _the_update(url))
    again = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="2"), "PS019_CHANGE_REQUEST": cr},
                   dry_run=False)
    assert again.decision.blocked
    assert "single-use" in " ".join(violations(again)["PS019-GATE-001"])


def test_a_token_whose_first_use_was_hidden_is_still_refused_as_a_replay(backend, tmp_path):
    from ps019.oidc.local_issuer import LocalIssuer
    from tests.test_gate_oidc import _deploy, change_request, gather, token, violations

    name, url, hands = backend
    issuer = LocalIssuer("https://token.actions.example.test")
    raw = _pack_settings(issuer, tmp_path, url)
    env = {"PS019_ID_TOKEN": token(issuer, jti="jti-stolen"), "PS019_CHANGE_REQUEST": change_request(tmp_path)}
    assert _deploy(tmp_path, raw, env).decision.allowed
    hide_record(name, url, hands, _the_update(url))
    again = gather(tmp_path, raw, env, dry_run=False)
    assert again.decision.blocked
    assert "does not count" in " ".join(violations(again)["PS019-GATE-004"])


@pytest.mark.postgres
def test_pg_writer_junk_at_the_head_of_the_stacks_chain_fails_closed(pg_evidence, tmp_path):
    """The writer role can always extend a chain with a row of its own (the trigger checks only the link): the
    memory of earlier deployments then cannot be read, and the gate must refuse, not forget."""
    from ps019.oidc.local_issuer import LocalIssuer
    from tests.test_gate_oidc import _deploy, change_request, gather, token, violations

    issuer = LocalIssuer("https://token.actions.example.test")
    url = pg_evidence.writer_dsn
    raw = _pack_settings(issuer, tmp_path, url, rules={"production": {"normal": {"singleUse": True}}})
    cr = change_request(tmp_path)
    assert _deploy(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="1"), "PS019_CHANGE_REQUEST": cr}
                   ).decision.allowed
    with open_store(url) as store:
        chain = "acme/web/prod"
        seq, digest = store.heads()[chain]
    PgWriterHands(url).junk_row(chain, seq + 1, digest, stack=chain, kind="preview")
    again = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="2"), "PS019_CHANGE_REQUEST": cr},
                   dry_run=False)
    assert again.decision.blocked
    text = " ".join(violations(again)["PS019-GATE-001"])
    assert "single-use" in text and "could not be read" in text


def test_chain_since_finds_every_record_by_position_and_refuses_a_gap(tmp_path):
    """The store-level reader under those checks: the window's records from the signed documents, however the
    columns say otherwise, a stopping point well before the window, and a refusal for a deleted row."""
    path = tmp_path / "evidence.db"
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with open_store(f"sqlite://{path}") as store:
        store.trust(TRUST)
        for day in range(0, 300, 2):  # 150 records, one every two days
            store.append(make_record(started_at=t0 + timedelta(days=day)), SIGNER)
        since = t0 + timedelta(days=250)
        got = store.chain_since(STACK, since, kind="update")
        assert [r.document["started_at"][:10] for r in got][-1] == "2027-07-09"  # day 250
        assert len(got) == 25
        h = SqliteHands(path)
        h.sql("UPDATE records SET kind = 'blocked', started_at = '2000-01-01T00:00:00.000000Z' WHERE seq = 140")
        with pytest.raises(IntegrityError, match="field kind: indexed column kind"):
            store.chain_since(STACK, since)
        h.sql("DELETE FROM records WHERE seq = 140")
        with pytest.raises(IntegrityError, match="sequence gap: record"):
            store.chain_since(STACK, since)


def test_chain_since_refuses_an_untrusted_record_in_the_window(tmp_path):
    with open_store(f"sqlite://{tmp_path / 'e.db'}") as store:
        store.trust(TRUST)
        store.append(make_record(), SIGNER)
        store.append(make_record(), Signer.generate())  # someone else's key, through the store API
        with pytest.raises(IntegrityError, match="unknown key"):
            store.chain_since(STACK, datetime(2026, 1, 1, tzinfo=timezone.utc))


# --- 2. rows that cannot be decoded: one failure naming the row, never a crash that hides the rest ----------------

DEEP = "[" * 200_000 + "]" * 200_000  # deeper than any JSON parser recurses
UNDECODABLE = {
    "deep-json-document": ("document", DEEP),
    "deep-json-envelope": ("envelope", json.dumps({"payloadType": "application/vnd.in-toto+json",
                                                   "payload": __import__("base64").b64encode(DEEP.encode()).decode(),
                                                   "signatures": [{"keyid": SIGNER.keyid, "sig": ""}]})),
    "not-json": ("document", "{not json"),
    "invalid-utf8-column": ("actor", b"A\xffB"),
}


def _tamper_two(hands, store, column, value):
    """Tamper with the second record as asked, and (as a second, independent tampering) the fourth's kind."""
    rows = sorted(store.iter_all(), key=lambda r: r.sequence)
    h = hands()
    if isinstance(value, bytes):  # sqlite stores whatever bytes it is given as TEXT
        h.sql(f"UPDATE {h.records} SET {column} = CAST(%s AS TEXT) WHERE record_id = %s", (value, rows[1].record_id))
    else:
        h.sql(f"UPDATE {h.records} SET {column} = %s WHERE record_id = %s", (value, rows[1].record_id))
    h.sql(f"UPDATE {h.records} SET kind = 'preview' WHERE record_id = %s", (rows[3].record_id,))
    return rows[1].record_id, rows[3].record_id


@pytest.mark.parametrize("where, case", [("sqlite", c) for c in sorted(UNDECODABLE)] + [
    pytest.param("pg_owner", c, marks=pytest.mark.postgres)  # a UTF8 database refuses invalid UTF-8 from anyone
    for c in sorted(UNDECODABLE) if not isinstance(UNDECODABLE[c][1], bytes)])
def test_an_undecodable_row_is_one_failure_naming_it_and_verify_still_reports_the_rest(where, case, tmp_path,
                                                                                        request):
    """Before: a row nested too deeply for the JSON parser, or a column holding invalid UTF-8, stopped `verify`,
    `list`, `export` and `show` with `RecursionError` / `Could not decode to UTF-8` for the whole store, naming no
    record, and hid every other tampering behind it."""
    column, value = UNDECODABLE[case]
    if where == "sqlite":
        path = tmp_path / "evidence.db"
        url, hands = f"sqlite://{path}", lambda: SqliteHands(path)
    else:
        pg = request.getfixturevalue("pg_evidence")
        url, hands = pg.writer_dsn, lambda: PgOwnerHands(pg.owner_dsn)
    with open_store(url) as store:
        store.trust(TRUST)
        for _ in range(5):
            store.append(make_record(), SIGNER)
        bad, edited = _tamper_two(hands, store, column, value)
        named = {f.record_id for f in verify_store(store, TRUST).failures}
        assert {bad, edited} <= named
        with pytest.raises(IntegrityError, match=f"evidence record ({bad}|{edited})"):
            store.query(stack=STACK)
    if where == "sqlite":
        key = tmp_path / "org.pub"
        key.write_text(SIGNER.public_key_pem())
        for cmd in (["verify"], ["list", "--limit", "0"], ["export", "--format", "jsonl"], ["show", bad]):
            done = _cli(tmp_path, "evidence", *cmd, "--store", url, "--public-key", str(key))
            assert done.returncode == 1, (cmd, done.stderr)
            assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 1, done.stderr
            assert cmd[0] == "show" or bad in done.stdout + done.stderr or edited in done.stdout + done.stderr


def _cli(tmp_path, *args):
    import os

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "PS019_VERIFIED_INDEX_DIR": "memory"}
    return subprocess.run([sys.executable, "-m", "ps019.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_s3_objects_that_are_not_records_or_heads_are_named_not_crashed_on(s3_evidence_url):
    """An S3 principal with PutObject writes a new version over a record (Object Lock keeps the old version but GET
    returns the new one), over an ID pointer, and over head.json."""
    with open_store(s3_evidence_url) as store:
        store.trust(TRUST)
        a, b, _c = (store.append(make_record(), SIGNER) for _ in range(3))
        s3 = _s3_client()
        s3.put_object(Bucket=store.bucket, Key=store._record_key(STACK, 2), Body=DEEP.encode())
        s3.put_object(Bucket=store.bucket, Key=store._id_key(a.record_id), Body=b"\xff not json")
        failures = verify_store(store, TRUST).failures
        named = {f.record_id for f in failures}
        assert a.record_id in named and f"<unnamed row at {STACK} #2>" in named  # b's object holds no record now
        s3.put_object(Bucket=store.bucket, Key=store._head_key(STACK), Body=b"[]")
        with pytest.raises(IntegrityError, match=f"evidence chain {STACK}: field head"):
            verify_store(store, TRUST)


# --- 3. text the deployer controls (user name, ticket) or the store's writer adds, shown to the auditor ----------

HOSTILE_ACTOR = '=HYPERLINK("http://evil.example/x","ok")\x1b]0;pwned\x07\x1b[2J[/x][link=http://evil.example]\u202e'
FORMULA_TICKET = "+cmd|' /C calc'!A0"


def _hostile_store(tmp_path):
    from ps019.evidence import Identity

    path = tmp_path / "evidence.db"
    with open_store(f"sqlite://{path}") as store:
        record = store.append(make_record(actor=Identity(id=HOSTILE_ACTOR, kind="local-user"),
                                          change_request=FORMULA_TICKET), SIGNER)
    key = tmp_path / "org.pub"
    key.write_text(SIGNER.public_key_pem())
    return f"sqlite://{path}", str(key), record


def test_csv_export_cells_never_start_a_formula_and_stay_lossless(tmp_path):
    """Before: a deployer whose user name (``$USER``, the actor of a local run) or ticket starts with ``=``/``+``
    got a live formula into the auditor's spreadsheet (``=HYPERLINK``, ``=cmd|...``)."""
    from ps019.evidence.export import read_csv

    url, key, record = _hostile_store(tmp_path)
    done = _cli(tmp_path, "evidence", "export", "--format", "csv", "--store", url, "--public-key", key)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows[0]["actor"] == "'" + HOSTILE_ACTOR and rows[0]["change_request"] == "'" + FORMULA_TICKET
    for row in rows:
        for name, value in row.items():
            assert name in ("record_json", "envelope_json") or not value.startswith(("=", "+", "-", "@")), name
    back = read_csv(done.stdout)
    assert [r.document for r in back] == [record.document]
    assert verify_store_file(back).ok


def verify_store_file(records):
    from ps019.evidence import verify_chain

    return verify_chain(records, TRUST)


@pytest.mark.parametrize("command", [["list", "--limit", "0"], ["sample", "--n", "1", "--seed", "s"]])
def test_record_text_never_drives_the_auditors_terminal_or_breaks_the_table(command, tmp_path):
    """Before: escape sequences in a record's actor reached the terminal raw (set the window title, cleared the
    screen), and in `evidence sample` a ``[/x]`` in a user name crashed the table with a rich MarkupError
    traceback."""
    url, key, _ = _hostile_store(tmp_path)
    done = _cli(tmp_path, "evidence", *command, "--store", url, "--public-key", key)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\u202e" not in done.stdout
    assert "Traceback" not in done.stderr
    assert "[/x]" in done.stdout.replace("\n", "").replace("│", "").replace(" ", "")


def test_a_key_the_store_writer_adds_to_a_document_is_shown_not_executed_by_verify(tmp_path):
    path = tmp_path / "evidence.db"
    with open_store(f"sqlite://{path}") as store:
        record = store.append(make_record(), SIGNER)
    h = SqliteHands(path)
    doc = json.loads(h.sql("SELECT document FROM records")[0][0])
    doc["\r\x1b[2KOK: 1 records in 1 chain(s) verified\x1b[8m"] = 1  # overwrite the BROKEN line on screen
    h.sql("UPDATE records SET document = ?", (json.dumps(doc),))
    key = tmp_path / "org.pub"
    key.write_text(SIGNER.public_key_pem())
    done = _cli(tmp_path, "evidence", "verify", "--store", f"sqlite://{path}", "--public-key", str(key))
    assert done.returncode == 1 and record.record_id in done.stdout
    assert "\x1b" not in done.stdout and "\r" not in done.stdout and "\\u001b[2KOK" in done.stdout
    listed = _cli(tmp_path, "evidence", "list", "--store", f"sqlite://{path}", "--public-key", str(key))
    assert listed.returncode == 1 and "\x1b" not in listed.stderr and len(listed.stderr.strip().splitlines()) == 1


def test_report_tables_show_record_text_literally():
    from rich.console import Console

    from ps019.evidence.report import compute_metrics, render_table

    m = compute_metrics([], since=None, until=datetime(2026, 12, 1, tzinfo=timezone.utc))
    m.exceptions_in_force.append({"exception_id": "EX-[/x]", "control_id": "PS019-IAM-001",
                                  "resource": "urn:\x1b]0;pwned\x07", "expires_at": "2026-12-31"})
    out = io.StringIO()
    render_table(m, Console(file=out, width=200))
    assert "EX-[/x]" in out.getvalue() and "\x1b]0" not in out.getvalue()


def test_html_report_escapes_every_field_a_record_controls(tmp_path):
    """Held: every value in the HTML report goes through html.escape (kept for coverage: no other test puts markup
    in the records). The stack of an incomplete production update is listed in the report's table."""
    path = tmp_path / "evidence.db"
    script = "<script>alert(1)</script>"
    with open_store(f"sqlite://{path}") as store:
        store.append(make_record(stack=script, rollback_plan=None, started_at=datetime.now(timezone.utc)), SIGNER)
    key = tmp_path / "org.pub"
    key.write_text(SIGNER.public_key_pem())
    out = tmp_path / "r.html"
    done = _cli(tmp_path, "report", "--store", f"sqlite://{path}", "--public-key", str(key), "--format", "html",
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page


# --- 4. redaction: a secret that is a whole map -------------------------------------------------------------------


def test_entries_of_a_secret_map_are_redacted_wherever_a_message_quotes_them(tmp_path):
    """Before: only secrets that were strings became forbidden values, so the entries of a secret map (a Lambda's
    ``environment.variables`` marked secret as one value) reached the record when a message quoted one."""
    from ps019.evidence import PolicyResult
    from ps019.model import ResourceView
    from ps019.pack.facts import _secret_values

    view = ResourceView(urn="urn:pulumi:prod::payments::aws:lambda/function:Function::f",
                        type="aws:lambda/function:Function", name="f",
                        props={"environment": {"variables": {"DB_PASSWORD": "Hunter2-zq9x", "PORT": "5432"}},
                               "tags": {"t": ["listed-secret-77"]}},
                        secret_paths=frozenset({("environment", "variables"), ("tags",)}))
    record = make_record(forbidden_values=_secret_values([view]), policy_results=[PolicyResult(
        control_id="PS019-X-001", level="advisory", severity="high", urn=view.urn,
        message="DB_PASSWORD=hunter2-ZQ9X looks like a credential; tag listed-secret-77")])
    with open_store(f"sqlite://{tmp_path / 'e.db'}") as store:
        stored = store.append(record, SIGNER)
    text = json.dumps(stored.document).lower()
    assert "hunter2-zq9x" not in text and "listed-secret-77" not in text
    assert "[secret] looks like a credential" in json.dumps(stored.document)


def test_a_short_secret_never_rewrites_a_record_id_or_a_digest(tmp_path):
    """Before: a 4-character secret made of hex digits (``beef``, or ``5432`` in a secret map) was replaced inside
    every record ID and digest that happened to contain it: the stored record's ID was no longer the one the pack
    reported, its resources' digests were corrupted. A long (16+) secret inside such a string is still redacted."""
    from ps019.evidence import ResourceChange

    token = "0123456789abcdef0123"
    record = make_record(forbidden_values={"beef", "5432", token},
                         record_id="1beef000-5432-4000-8000-000000000000",
                         resources=[ResourceChange(urn="urn:a", type="t", op="create", inputs_digest="00beef" + "1" * 58),
                                    ResourceChange(urn="urn:b", type="t", op="create", inputs_digest="9" + token + "9" * 43)],
                         change_request="CHG beef 5432")
    with open_store(f"sqlite://{tmp_path / 'e.db'}") as store:
        stored = store.append(record, SIGNER)
        assert stored.record_id == record.record_id and store.contains(record.record_id)
    assert stored.document["resources"][0]["inputs_digest"] == "00beef" + "1" * 58
    assert token not in json.dumps(stored.document)
    assert stored.document["change_request"] == "CHG [secret] [secret]"
