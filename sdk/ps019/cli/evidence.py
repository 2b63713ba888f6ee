"""``ps019 evidence ...`` (the auditor's CLI over the evidence store) and ``ps019 verify`` (post-release
verification of a stack's state against its last update record). See docs/auditor-guide.md.

Exit statuses: 0 ok; 1 the check ran and found a problem (broken chain, bad signature, drift, updates without
evidence); 2 unusable input or an unreachable store (one line on stderr, never a traceback).
"""

from __future__ import annotations

import getpass
import json
import sys
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import click

from ps019.errors import InputError, Ps019Error, StoreError, printable

_STORE_HELP = "Evidence store URL (sqlite:///path, s3://bucket/prefix, postgresql://...); default " \
              "$PS019_EVIDENCE_STORE, else the per-user sqlite store."
_KINDS = ["preview", "update", "blocked", "approval", "break_glass_open", "break_glass_close", "break_glass_review",
          "exception", "verification", "offline_preview", "offline_update", "offline_blocked"]


def store_option(f):
    return click.option("--store", "store_url", metavar="URL", default=None, help=_STORE_HELP)(f)


def key_option(f):
    return click.option("--public-key", "public_keys", multiple=True, metavar="FILE|KEY",
                        help="Ed25519 public key trusted for record signatures (PEM file, or base64/hex raw key); "
                             "repeatable. Default: evidence.verify_keys from the settings, else the local "
                             "signing key's public key.")(f)


# --- store access -------------------------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """The URL without credentials, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password or parts.username:
            host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
            return urlunsplit((parts.scheme, host, parts.path, "", ""))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:
        return url.split("://", 1)[0] + "://…"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextmanager
def opened_store(url: str | None, *, read_only: bool = True, keys: dict[str, Any] | None = None) -> Iterator[Any]:
    """Open the store; any failure to reach or read it becomes a one-line StoreError (exit 2). Read-only commands
    open sqlite read-only, so an auditor's typo never creates an empty store. With ``keys``, every record a query
    returns must carry a good signature by one of them (and its columns must agree with it): IntegrityError, exit 1,
    naming the record and field, otherwise."""
    from ps019.evidence import open_store
    from ps019.evidence.settings import resolve_store_url

    resolved = resolve_store_url(url)
    target = resolved
    if read_only and resolved.startswith("sqlite:") and "?" not in resolved:
        target = resolved + "?mode=ro"
    try:
        store = open_store(target)
    except Ps019Error:
        raise
    except Exception as exc:  # noqa: BLE001 -- driver errors: one line, no traceback
        raise StoreError(f"cannot open evidence store {safe_url(resolved)}: {_first_line(exc)}") from None
    if keys is not None:
        store.trust(keys)
        store.use_verified_index(verified_index(store, keys))
    try:
        yield store
    except (Ps019Error, click.exceptions.ClickException, click.exceptions.Exit, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"evidence store {safe_url(resolved)}: {_first_line(exc)}") from None
    finally:
        try:
            store.close()
        except Exception:  # noqa: BLE001
            pass


def verified_index(store: Any, keys: dict[str, Any]) -> Any:
    """This reader's verified index of ``store`` (ps019.evidence.verified): answers complete and verified, and a
    record verified once is only hash-compared afterwards. Falls back to an in-memory index (everything verified
    again in this command) when the index directory cannot be written."""
    from ps019.evidence.verified import VerifiedIndex

    try:
        index = VerifiedIndex.for_store(store, keys)
    except StoreError as exc:
        click.echo(f"note: {exc}; verifying in memory for this command only", err=True)
        index = VerifiedIndex.for_store(store, keys, directory="memory")
    index.notice = lambda n: click.echo(f"verifying {n:,} record(s) this reader has not verified before (once: "
                                        "later commands reuse the result)...", err=True)
    return index


def trusted_keys(public_keys: tuple[str, ...]) -> dict[str, Any]:
    from ps019.evidence import EvidenceSettings
    from ps019.evidence.signing import keyid_of, parse_public_key

    if not public_keys:
        return EvidenceSettings().public_keys()
    keys = {}
    for item in public_keys:
        path = Path(item).expanduser()
        try:
            text = path.read_text() if path.is_file() else item
        except OSError as exc:
            raise InputError(f"cannot read public key {item}: {exc.strerror}") from None
        key = parse_public_key(text)
        keys[keyid_of(key)] = key
    return keys


def _time(value: str | None, what: str) -> datetime | None:
    from ps019.evidence.audit import parse_time

    return parse_time(value, what=what)


def filter_options(f):
    for opt in reversed([
        click.option("--stack", help="ORG/PROJECT/STACK, or a bare stack name (any org/project)."),
        click.option("--environment", help="Tier: production, staging, development, unknown."),
        click.option("--kind", type=click.Choice(_KINDS)),
        click.option("--change-class", help="standard, normal or emergency."),
        click.option("--actor", help="Deploying/operating identity exactly as recorded (e.g. the STS ARN)."),
        click.option("--since", help="Start of the period (inclusive): YYYY-MM-DD, ISO 8601, or relative (30d)."),
        click.option("--until", help="End of the period (exclusive)."),
        click.option("--break-glass", is_flag=True, help="Only records under or about break-glass."),
        click.option("--with-violations", is_flag=True, help="Only records with policy results."),
    ]):
        f = opt(f)
    return f


def query_filters(stack, environment, kind, change_class, actor, since, until, break_glass, with_violations
                  ) -> dict[str, Any]:
    filters: dict[str, Any] = {"stack": stack, "environment": environment, "kind": kind,
                               "change_class": change_class, "actor": actor,
                               "since": _time(since, "--since"), "until": _time(until, "--until")}
    if break_glass:
        filters["break_glass"] = True
    if with_violations:
        filters["with_violations"] = True
    return {k: v for k, v in filters.items() if v is not None}


# --- output helpers -----------------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A table cell from record text: rich markup escaped (``[/x]`` would crash the table, ``[link=…]`` make a
    hyperlink) and control characters shown, not sent to the terminal."""
    from rich.markup import escape

    return escape(printable("" if value is None else value))


def _console():
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _actor(doc: dict[str, Any]) -> str:
    from ps019.evidence.export import payload_actor

    return (doc.get("actor") or {}).get("id") or payload_actor(doc) or ""


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The compact per-record view used by `list --format json` and the table (``ps019.evidence.store``)."""
    from ps019.evidence.store import record_summary

    return record_summary(doc)


def offline_note(doc: dict[str, Any]) -> str | None:
    """One line for a record of an offline run (kinds offline_*): what drove it, and that nothing was deployed."""
    from ps019.evidence.record import OFFLINE_KIND_PREFIX

    kind = str(doc.get("kind") or "")
    if not kind.startswith(OFFLINE_KIND_PREFIX):
        return None
    offline = doc.get("offline") or {}
    placeholders = offline.get("placeholders") or {}
    count = sum(len(v) for v in placeholders.values() if isinstance(v, list))
    judged = (f"; it judged {count} offline placeholder value(s) ({', '.join(sorted(placeholders))}), not what the "
              "cloud would return" if count else "")
    return (f"OFFLINE RUN, NOT A DEPLOYMENT: this {kind[len(OFFLINE_KIND_PREFIX):]} pass was driven by "
            f"{offline.get('engine') or 'the offline stand-in'} from a {offline.get('source') or 'local'} input"
            f"{judged}. No deployment count, sample or check includes it.")


# --- the group ----------------------------------------------------------------------------------------------------


def configure_logging() -> None:
    """Logs go to stderr (warnings and up), so `--format json` output on stdout stays parseable."""
    from ps019.logging import configure_cli

    configure_cli()


@click.group()
def evidence() -> None:
    """Query, verify, sample and export the signed evidence record."""
    configure_logging()


@evidence.command("list")
@store_option
@filter_options
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many records (0 = all).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@key_option
def list_cmd(store_url, stack, environment, kind, change_class, actor, since, until, break_glass, with_violations,
             limit, fmt, public_keys) -> None:
    """List records, newest first. Every record listed is checked: signature, and every indexed column against the
    signed document (exit 1 naming the record and field when one disagrees)."""
    filters = query_filters(stack, environment, kind, change_class, actor, since, until, break_glass,
                            with_violations)
    if limit:
        filters["limit"] = limit
    with opened_store(store_url, keys=trusted_keys(public_keys)) as store:
        rows = store.summaries(**filters)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} evidence record(s)", title_justify="left")
    for col in ("started_at", "kind", "stack", "environment", "class", "outcome", "actor", "viol.", "record_id"):
        table.add_column(col, overflow="fold", no_wrap=col in ("started_at", "record_id"))
    for r in rows:
        table.add_row(*(cell(v or "") for v in (
            r["started_at"], r["kind"], r["stack"], r["environment"], r["change_class"], r["outcome"], r["actor"],
            r["violations"], r["record_id"])))
    _console().print(table)


@evidence.command("show")
@click.argument("record_id")
@store_option
@key_option
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True)
def show(record_id, store_url, public_keys, fmt) -> None:
    """Show one record in full, with its signature status (exit 1 when the signature does not verify)."""
    from ps019.evidence.chain import record_problems

    with opened_store(store_url) as store:
        stored = store.get(record_id)
        if stored is None and len(record_id) >= 4:
            # The short IDs that `evidence list`, the demo and the reports print are unique prefixes.
            matches = store.ids_with_prefix(record_id)
            if len(matches) > 1:
                raise InputError(f"evidence record ID prefix {record_id!r} is ambiguous ({', '.join(matches)}, ...); "
                                 "give more characters")
            stored = store.get(matches[0]) if matches else None
    if stored is None:
        raise InputError(f"no evidence record {record_id!r} in the store")
    keys = trusted_keys(public_keys)
    problems = record_problems(stored, keys)
    problem = (problems[0][0], "; ".join(f"{f}: {r}" if f else r for _, f, r in problems)) if problems else None
    sigs = stored.envelope.get("signatures") or [{}]
    status = {"valid": problem is None, "keyid": sigs[0].get("keyid"),
              "reason": None if problem is None else problem[1]}
    if fmt == "json":
        click.echo(json.dumps({"record": stored.document, "envelope": stored.envelope, "signature": status},
                              indent=2, sort_keys=True))
    else:
        console = _console()
        console.print_json(json.dumps(stored.document, sort_keys=True))
        offline = offline_note(stored.document)
        if offline:
            console.print(printable(offline), style="bold yellow", markup=False)
        line = (f"signature: valid (Ed25519 key {str(status['keyid'])[:16]}…), chain {stored.chain_key} "
                f"#{stored.sequence}" if problem is None else f"signature: INVALID -- {problem[1]}")
        console.print(printable(line), style="bold green" if problem is None else "bold red", markup=False)
    if problem is not None:
        raise SystemExit(1)


@evidence.command("verify")
@store_option
@key_option
@click.option("--stack", help="Verify one chain (ORG/PROJECT/STACK as recorded in chain_key).")
@click.option("--file", "jsonl_file", type=click.Path(dir_okay=False), default=None,
              help="Verify a JSONL export instead of a store (no truncation check: a file has no recorded heads).")
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Signed checkpoints: a `ps019 evidence checkpoint` file, a file sink's JSON-lines chain file, or a "
                   "CI log with `ps019-checkpoint:` lines. Prove the store still holds every record they attest "
                   "(detects truncation, head rewind and rollback). Repeatable.")
@click.option("--checkpoints-from", "sink_urls", multiple=True, metavar="SINK",
              help="A checkpoint sink (file:///dir or s3://bucket/prefix, as in evidence.checkpoints.sink): check the "
                   "store against the newest checkpoint of every chain published there. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(store_url, public_keys, stack, jsonl_file, checkpoint_files, sink_urls, fmt) -> None:
    """Check every signature, hash, chain link, indexed column and recorded head, and every checkpoint given; list
    EVERY failure (exit 1 when there is one)."""
    from ps019.evidence import verify_chain
    from ps019.evidence.chain import verify_store
    from ps019.evidence.checkpoint import load_checkpoints

    keys = trusted_keys(public_keys)
    anchors = [cp.chains for path in checkpoint_files for cp in load_checkpoints(path, checkpoint_keys(keys))]
    if sink_urls and jsonl_file:
        raise InputError("--checkpoints-from needs a store (not --file): a sink files checkpoints by store URL")
    if jsonl_file:
        from ps019.evidence.export import read_jsonl

        try:
            with open(jsonl_file, encoding="utf-8") as fh:
                records = [r for r in read_jsonl(fh) if not stack or r.chain_key == stack]
        except OSError as exc:
            raise InputError(f"cannot read {jsonl_file}: {exc.strerror}") from None
        records.sort(key=lambda r: (r.chain_key, r.sequence))
        if stack:
            anchors = [{k: v for k, v in a.items() if k == stack} for a in anchors]
        result = verify_chain(records, keys, checkpoints=anchors)
    else:
        with opened_store(store_url) as store:
            anchors += [sink_anchors(url, store.url, checkpoint_keys(keys)) for url in sink_urls]
            index = verified_index(store, keys)
            try:  # what verifies here need not be verified again by list, sample, export or report
                with index.recording() as add:
                    result = verify_store(store, keys, stack, checkpoints=anchors, on_verified=add)
            finally:
                index.close()
    if fmt == "json":
        f = result.first_failure
        click.echo(json.dumps({"ok": result.ok, "records_checked": result.records_checked,
                               "chains": len(result.chains), "checkpoints": result.checkpoints_checked,
                               "first_failure": None if f is None else f.to_dict(),
                               "failures": [x.to_dict() for x in result.failures]}, indent=2))
    else:
        click.echo(printable(result.summary()))
        for failure in result.failures:
            click.echo(printable(f"  FAIL [{failure.code}] {failure}"))
    if not result.ok:
        raise SystemExit(1)


def sink_anchors(sink_url: str, store_url: str, keys: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """chain -> (sequence, hash) of the newest checkpoint of each chain of ``store_url`` published to the sink."""
    from ps019.evidence.witness import Witness, open_sink

    sink = open_sink(sink_url)
    if not sink.readable:
        raise InputError(f"checkpoint sink {sink_url} cannot be read back; pass the log's lines with --checkpoint")
    return Witness(sink=sink, store_url=store_url).anchors(keys)


def checkpoint_keys(keys: dict[str, Any]) -> dict[str, Any]:
    """Keys a checkpoint may be signed by: the trusted record keys, plus this user's own evidence key (an auditor
    signs the checkpoints they take and keep)."""
    from ps019.evidence import EvidenceSettings, load_signer

    out = dict(keys)
    try:
        own = load_signer(EvidenceSettings())
        out[own.keyid] = own.public_key
    except Ps019Error:
        pass
    return out


@evidence.command("checkpoint")
@store_option
@key_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Write the checkpoint here (default: stdout). Keep it where the store's writer cannot rewrite "
                   "it: an Object Lock bucket, a second store, the CI log, the auditor's own files.")
@click.option("--no-verify", is_flag=True,
              help="Attest the store's heads without verifying the whole store first (faster; the checkpoint then "
                   "says verified: false).")
def checkpoint(store_url, public_keys, out_file, no_verify) -> None:
    """Export a signed checkpoint of the store: every chain's head (sequence and hash), the time, and a digest over
    them, signed with the evidence signing key. `verify --checkpoint FILE` later proves the store still holds all of
    it. Refuses (exit 1) to attest a store that does not verify."""
    from ps019.evidence import EvidenceSettings, load_signer
    from ps019.evidence.chain import verify_store
    from ps019.evidence.checkpoint import make_checkpoint

    keys = trusted_keys(public_keys)
    with opened_store(store_url) as store:
        if no_verify:
            heads, verified = store.heads(), False
        else:
            result = verify_store(store, keys)
            if not result.ok:
                click.echo(printable(result.summary()), err=True)
                raise SystemExit(1)
            heads, verified = result.chains, True
        cp = make_checkpoint(safe_url(store.url), heads, load_signer(EvidenceSettings()), verified=verified)
    text = json.dumps(cp, indent=2, sort_keys=True) + "\n"
    if out_file:
        try:
            Path(out_file).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {out_file}: {exc.strerror}") from None
        click.echo(f"checkpoint of {len(heads)} chain(s) written to {out_file}", err=True)
    else:
        click.echo(text, nl=False)


@evidence.command("sample")
@store_option
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Sample size.")
@click.option("--seed", required=True, help="Any string; the same seed and population give the same sample.")
@click.option("--since", help="Start of the period (inclusive).")
@click.option("--until", help="End of the period (exclusive).")
@click.option("--environment", default="production", show_default=True)
@click.option("--kind", type=click.Choice(_KINDS), default="update", show_default=True)
@click.option("--stack", help="Restrict the population to one stack.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@key_option
def sample_cmd(store_url, n, seed, since, until, environment, kind, stack, fmt, public_keys) -> None:
    """A reproducible sample of changes for a period.

    Algorithm (ps019-sample-v1): every record in the population gets rank = SHA-256("<seed>:<record_id>"); the
    sample is the N lowest ranks. Anyone can re-derive it from an export with sha256sum."""
    from ps019.evidence.audit import SAMPLE_ALGORITHM, sample, sample_rank

    filters = {k: v for k, v in {"environment": environment, "kind": kind, "stack": stack,
                                 "since": _time(since, "--since"), "until": _time(until, "--until")}.items() if v}
    with opened_store(store_url, keys=trusted_keys(public_keys)) as store:
        population = [r.document for r in store.query(**filters)]
    chosen = sample(population, n, seed)
    rows = [{**summary(d), "rank": sample_rank(seed, d["record_id"])} for d in chosen]
    if fmt == "json":
        click.echo(json.dumps({"algorithm": SAMPLE_ALGORITHM, "seed": seed, "population": len(population),
                               "filters": {k: (v.isoformat() if isinstance(v, datetime) else v)
                                           for k, v in filters.items()},
                               "sample": rows}, indent=2))
        return
    from rich.table import Table

    table = Table(title=cell(f"sample of {len(rows)} from {len(population)} {environment} {kind} record(s), "
                             f"seed {seed!r}"), title_justify="left", caption=SAMPLE_ALGORITHM)
    for col in ("#", "started_at", "stack", "class", "actor", "record_id"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(rows, 1):
        table.add_row(*(cell(v) for v in (str(i), r["started_at"] or "", r["stack"], r["change_class"] or "",
                                          r["actor"], r["record_id"])))
    _console().print(table)


@evidence.command("export")
@store_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "oscal"]), required=True)
@click.option("--since", help="Start of the period (inclusive).")
@click.option("--until", help="End of the period (exclusive).")
@click.option("--stack", help="Only this stack.")
@click.option("--environment", help="Only this tier.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write here instead of stdout.")
@key_option
def export(store_url, fmt, since, until, stack, environment, out_file, public_keys) -> None:
    """Export records in chain order: JSONL (lossless, verifiable), CSV (flat + lossless JSON columns) or OSCAL
    assessment results (validates with compliance-trestle)."""
    from ps019.evidence import export as ex

    t0, t1 = _time(since, "--since"), _time(until, "--until")
    filters = {k: v for k, v in {"since": t0, "until": t1, "stack": stack, "environment": environment}.items() if v}
    with opened_store(store_url, keys=trusted_keys(public_keys)) as store:
        records = store.query(**filters)
        chain_ok = None
        if fmt == "oscal":
            from ps019.evidence.chain import verify_store

            try:
                keys = trusted_keys(public_keys)
                chain_ok = verify_store(store, keys, _chain_of(stack)).ok
            except InputError:
                chain_ok = None
    records.sort(key=lambda r: (r.chain_key, r.sequence))
    if out_file:
        from ps019.cli.outfile import prepare_output

        prepare_output(out_file)
    out = open(out_file, "w", encoding="utf-8", newline="") if out_file else sys.stdout
    try:
        if fmt == "jsonl":
            n = ex.write_jsonl(records, out)
        elif fmt == "csv":
            n = ex.write_csv(records, out)
        else:
            json.dump(ex.to_oscal(records, since=t0, until=t1, chain_verified=chain_ok), out, indent=2)
            out.write("\n")
            n = len(records)
    finally:
        if out_file:
            out.close()
    if out_file:
        click.echo(f"exported {n} record(s) to {out_file}", err=True)


def _chain_of(stack: str | None) -> str | None:
    return stack if stack and stack.count("/") == 2 else None


@evidence.command("flush")
@click.option("--store", "store_url", metavar="URL", default=None,
              help="Deliver only the records spooled for this store (same URL without credentials; give the "
                   "credentials here), and records spooled before spool files named their store. Default: every "
                   "record to the store it was spooled for.")
@click.option("--spool-dir", type=click.Path(file_okay=False), default=None,
              help="The spool directory (default $PS019_EVIDENCE_SPOOL_DIR, else <data dir>/spool; the pack's "
                   "ps019-settings.evidence.spool_dir when it sets one).")
def flush(store_url, spool_dir) -> None:
    """Deliver records spooled while their store was unreachable, to that store (exactly once, in order).

    A spooled record goes only to the store it was written for: records for another store stay spooled, one line
    each says so, and the exit status is 1."""
    from ps019.evidence import EvidenceSettings, flush_spool

    settings = EvidenceSettings(store_url=store_url, spool_dir=spool_dir)
    try:
        result = flush_spool(settings)
    except Ps019Error:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"cannot flush the evidence spool: {_first_line(exc)}") from None
    click.echo(result.summary())
    for line in result.refused:
        click.echo(f"ps019: not delivered: {line}", err=True)
    if result.refused:
        raise SystemExit(1)


@evidence.command("reconcile")
@click.option("--history", "history_file", required=True, type=click.Path(dir_okay=False),
              help="Output of `pulumi stack history --json` ('-' reads stdin).")
@click.option("--stack", required=True, help="ORG/PROJECT/STACK the history belongs to.")
@store_option
@click.option("--kinds", multiple=True, default=("update",), show_default=True,
              help="History kinds that must have evidence (update, destroy, refresh, import...): comma-separated "
                   "and/or repeated (--kinds update --kinds destroy). Only updates run policy packs; add others to "
                   "see them listed as gaps.")
@click.option("--tolerance", type=int, default=300, show_default=True,
              help="Seconds of clock skew allowed between history times and record times.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@key_option
def reconcile_cmd(history_file, stack, store_url, kinds, tolerance, fmt, public_keys) -> None:
    """List stack updates that have no evidence record (exit 1 when any is missing). Works from the history file
    and the store alone; the policy pack does not need to be installed."""
    from ps019.evidence.audit import parse_stack_history, reconcile

    try:
        text = sys.stdin.read() if history_file == "-" else Path(history_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {history_file}: {exc.strerror}") from None
    history = parse_stack_history(text)
    if "/" not in stack:
        raise InputError("--stack must be ORG/PROJECT/STACK (or PROJECT/STACK)")
    kinds_list = list(dict.fromkeys(k.strip() for value in kinds for k in value.split(",") if k.strip()))
    window = [h.start for h in history]
    with opened_store(store_url, keys=trusted_keys(public_keys)) as store:
        since = min(window) - timedelta(seconds=tolerance) if window else None
        until = max((h.end or h.start) for h in history) + timedelta(seconds=tolerance + 1) if window else None
        records = [r.document for r in store.query(stack=stack, kind="update", since=since, until=until)] \
            if window else []
    result = reconcile(history, records, kinds=kinds_list, tolerance=timedelta(seconds=tolerance))
    if fmt == "json":
        click.echo(json.dumps({
            "stack": stack, "history_entries": len(history), "reconciled_kinds": kinds_list,
            "matched": [{"version": h.version, "start": h.start.isoformat(), "record_id": rid}
                        for h, rid in result.matched],
            "missing": [{"version": h.version, "kind": h.kind, "start": h.start.isoformat(),
                         "end": h.end.isoformat() if h.end else None, "result": h.result, "git_head": h.git_head}
                        for h in result.missing],
            "records_without_history": result.unmatched_records,
            "ignored": [{"version": h.version, "kind": h.kind} for h in result.ignored]}, indent=2))
    else:
        click.echo(f"{stack}: {len(result.matched)} of {len(result.matched) + len(result.missing)} "
                   f"{'/'.join(kinds_list)} entries have an evidence record; {len(result.missing)} missing"
                   + (f"; {len(result.ignored)} other entries not reconciled" if result.ignored else ""))
        for h in result.missing:
            click.echo(f"  MISSING {h.label()}: {h.kind} started {h.start.isoformat()} result "
                       f"{h.result or 'n/a'}" + (f" commit {h.git_head[:12]}" if h.git_head else ""))
        for rid in result.unmatched_records:
            click.echo(f"  note: record {rid} matches no history entry")
    if result.missing:
        raise SystemExit(1)


# --- ps019 verify -------------------------------------------------------------------------------------------------


@click.command("verify")
@click.option("--state", "state_file", required=True, type=click.Path(dir_okay=False),
              help="`pulumi stack export` of the stack as it is now (use --show-secrets or not; secrets never "
                   "leave the digest).")
@click.option("--stack", required=True, help="ORG/PROJECT/STACK.")
@store_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--no-record", is_flag=True, help="Compare only; do not append a verification record.")
@click.option("--record-store", metavar="URL", default=None,
              help="Where the verification record goes when your signing key is not the one that signs the store's "
                   "records (an auditor's own key): default your per-user store. It never goes into the "
                   "organisation's store then, where it would break `evidence verify` with the organisation's key.")
@key_option
def verify_deployment(state_file, stack, store_url, fmt, no_record, record_store, public_keys) -> None:
    """Post-release verification: compare the stack's current state with its last update record (same resources,
    same input digests) and append a `verification` record, to the store when you sign with the key that signed
    that update record, else kept apart in your own store (--record-store). Exit 1 on drift."""
    configure_logging()
    from ps019.engine import StackRef, load_stack_export
    from ps019.evidence import EvidenceRecord, EvidenceSettings, Identity, RecordKind, VerificationPayload, emit
    from ps019.evidence.audit import compare_state, last_update_record

    ref = StackRef.parse(stack)
    stack_ref = f"{ref.organization}/{ref.project}/{ref.stack}"
    export_ = load_stack_export(state_file, ref)
    state = state_digests(export_)
    with opened_store(store_url, read_only=no_record, keys=trusted_keys(public_keys)) as store:
        found = store.query(stack=stack_ref, kind="update", limit=50)
        last = last_update_record([r.document for r in found])
        if last is None:
            raise InputError(f"no completed update record for {stack_ref} in the evidence store")
        cmp = compare_state(last, state)
        record_id, kept_apart = None, None
        if not no_record:
            now = datetime.now(timezone.utc)
            record = EvidenceRecord(
                kind=RecordKind.VERIFICATION, started_at=now, ended_at=now, organization=ref.organization,
                project=ref.project, stack=ref.stack, environment=last.get("environment") or "unknown",
                outcome="matched" if cmp.matched else "drift",
                actor=Identity(id=_local_user(), kind="local-user", verified=False),
                links={"update_record_id": last["record_id"]},
                payload=VerificationPayload(against_record_id=last["record_id"], matched=cmp.matched,
                                            missing=cmp.missing, unexpected=cmp.unexpected, changed=cmp.changed,
                                            state_digest=cmp.state_digest,
                                            details={"compared_resources": cmp.compared,
                                                     "state_resources": len(state)}))
            from ps019.cli.evidence_keys import verification_destination
            from ps019.evidence.signing import load_signer

            signer = load_signer(EvidenceSettings())
            signed_by = next(r for r in found if r.record_id == last["record_id"]).envelope
            kept_apart = verification_destination(signer, signed_by, store.url, record_store)
            if kept_apart is None:
                result = emit(record, EvidenceSettings(store_url=store.url), store=store, signer=signer)
            else:
                result = emit(record, EvidenceSettings(store_url=kept_apart), signer=signer)
            record_id = result.record_id
    if fmt == "json":
        click.echo(json.dumps({"stack": stack_ref, "result": "match" if cmp.matched else "drift",
                               "against_record_id": last["record_id"], "verification_record_id": record_id,
                               "missing": cmp.missing, "unexpected": cmp.unexpected, "changed": cmp.changed,
                               "state_digest": cmp.state_digest}, indent=2))
    else:
        click.echo(f"{stack_ref}: {'MATCH' if cmp.matched else 'DRIFT'} against update record {last['record_id']} "
                   f"({cmp.compared} recorded resources, {len(state)} in state)")
        for line in cmp.differences():
            click.echo(f"  {line}")
        if record_id and kept_apart:
            click.echo(f"verification record {record_id} kept apart in {safe_url(kept_apart)}: it is signed by your "
                       "key, not by the key that signs this store's records, so it stays out of that store")
        elif record_id:
            click.echo(f"verification record {record_id} appended")
    if not cmp.matched:
        raise SystemExit(1)


def state_digests(export: Any) -> dict[str, tuple[str, str]]:
    """``urn -> (type, inputs_digest)`` for every resource of a loaded stack export (``ps019.engine.StackExport``).

    The digest is computed exactly as the pack computes it for the record: the resource's inputs go through the
    engine's wire encoding (``marshal_properties``) and the pack's single conversion (``struct_to_plain``, which
    unwraps secrets and lists their paths), then ``ps019.evidence.record.inputs_digest`` (secrets replaced by
    ``[secret]`` before hashing). So a secret never influences the digest and never leaves this function.
    """
    from ps019.engine.values import marshal_properties
    from ps019.digest import inputs_digest
    from ps019.pack.convert import struct_to_plain

    out: dict[str, tuple[str, str]] = {}
    for res in export:
        props, secret_paths = struct_to_plain(marshal_properties(res.inputs, dry_run=False))
        out[res.urn] = (res.type, inputs_digest(props, secret_paths))
    return out


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"


from ps019.cli.evidence_keys import public_key  # noqa: E402 - a command of the group above, in its own module

evidence.add_command(public_key)
