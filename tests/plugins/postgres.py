"""A throwaway PostgreSQL 15 cluster on 127.0.0.1 for the test session.

initdb/pg_ctl refuse to run as root, so when the tests run as root they are run through ``runuser -u postgres`` in a
temp dir owned by postgres (the research note, evidence-stack.md section 2). fsync is off: this is test data.
Skips (with the reason) when the binaries are missing. The cluster listens only on loopback, with trust auth for
the roles it creates; it is stopped and removed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass

import pytest

PG_BIN = os.environ.get("PS019_PG_BIN", "/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class PgCluster:
    host: str
    port: int
    superuser_dsn: str
    owner_dsn: str  # the evidence schema owner
    writer_dsn: str  # append-only writer (INSERT/SELECT)
    auditor_dsn: str  # read-only
    datadir: str

    def dsn(self, user: str, db: str = "evidence") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{db}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(args: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="session")
def pg_cluster():
    initdb = os.path.join(PG_BIN, "initdb")
    if not os.access(initdb, os.X_OK):
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL (initdb refuses root)")
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed")
    tmp = tempfile.mkdtemp(prefix="ps019-pg-")
    os.chmod(tmp, 0o700)
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    datadir = os.path.join(tmp, "data")
    port = _free_port()
    started = False
    try:
        _as_pg_user([initdb, "-D", datadir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                     "--no-sync"])
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off -c synchronous_commit=off "
                f"-c full_page_writes=off -c max_connections=50")
        _as_pg_user([os.path.join(PG_BIN, "pg_ctl"), "-D", datadir, "-l", os.path.join(tmp, "server.log"), "-w",
                     "-t", "60", "-o", opts, "start"])
        started = True
        su = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(su, autocommit=True) as con:
            con.execute("CREATE ROLE evidence_owner LOGIN")
            con.execute("CREATE ROLE evidence_writer LOGIN")
            con.execute("CREATE ROLE evidence_auditor LOGIN")
            con.execute("CREATE DATABASE evidence OWNER evidence_owner")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/evidence", autocommit=True) as con:
            con.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cluster = PgCluster(
            host="127.0.0.1", port=port, superuser_dsn=su,
            owner_dsn=f"postgresql://evidence_owner@127.0.0.1:{port}/evidence",
            writer_dsn=f"postgresql://evidence_writer@127.0.0.1:{port}/evidence",
            auditor_dsn=f"postgresql://evidence_auditor@127.0.0.1:{port}/evidence",
            datadir=datadir)
        yield cluster
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"could not start a throwaway PostgreSQL: {exc.stderr.strip().splitlines()[-1:]}")
    finally:
        if started:
            try:
                _as_pg_user([os.path.join(PG_BIN, "pg_ctl"), "-D", datadir, "-m", "immediate", "-w", "stop"])
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def pg_evidence(pg_cluster):
    """A freshly installed evidence schema (dropped and recreated per test); returns the cluster."""
    import psycopg

    from ps019.evidence.pg_store import SCHEMA, install_schema

    with psycopg.connect(pg_cluster.owner_dsn, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    install_schema(pg_cluster.owner_dsn, "evidence_writer", ("evidence_auditor",))
    return pg_cluster
