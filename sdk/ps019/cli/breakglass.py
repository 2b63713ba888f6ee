"""``ps019 break-glass`` (open / close / review / list) and ``ps019 exception`` (add / list).

Both read the trusted keys and rules from the same policy pack config the pack gets (``--policy-pack-config FILE`` or
``$PS019_POLICY_PACK_CONFIG``: its ``ps019-settings`` entry) and write to the same evidence store (``--store URL``,
else ``ps019-settings.evidence.store_url``, else ``$PS019_EVIDENCE_STORE``, else the per-user sqlite default).
Commands that create something print only its ID on stdout (so ``GRANT=$(ps019 break-glass open ...)`` works);
everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import click

from ps019.errors import InputError

ENV_CONFIG = "PS019_POLICY_PACK_CONFIG"


# --- shared plumbing ------------------------------------------------------------------------------------------------


class CommandEnv:
    """Settings, store and evidence signer for one command."""

    def __init__(self, config_path: str | None, store_url: str | None) -> None:
        from ps019.pack.settings import SETTINGS_POLICY, Settings

        path = config_path or os.environ.get(ENV_CONFIG)
        raw: dict[str, Any] = {}
        if path:
            from ps019.gate.change_request import DuplicateKey, no_duplicate_keys

            try:
                document = json.loads(Path(path).read_text(encoding="utf-8"), object_pairs_hook=no_duplicate_keys)
            except DuplicateKey as exc:
                raise InputError(f"policy pack config {path} is not usable JSON ({exc})") from None
            except RecursionError:
                raise InputError(f"policy pack config {path} is nested too deeply") from None
            except FileNotFoundError:
                raise InputError(f"policy pack config {path} does not exist") from None
            except OSError as exc:
                raise InputError(f"cannot read policy pack config {path}: {exc.strerror}") from None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"policy pack config {path} is not valid JSON ({getattr(exc, 'msg', exc)})") from None
            entry = document.get(SETTINGS_POLICY, {}) if isinstance(document, dict) else {}
            raw = {k: v for k, v in entry.items() if k != "enforcementLevel"} if isinstance(entry, dict) else {}
        self.config_path = path
        self.settings = Settings(raw=raw)
        self._store_url = store_url
        self._store = None

    def section(self, name: str) -> Any:
        value = self.settings.section(name)
        if value is None:
            raise InputError(self.settings.errors.get(name, f"ps019-settings.{name} is invalid"))
        return value

    @property
    def gate(self) -> Any:
        return self.section("gate")

    @property
    def break_glass(self) -> Any:
        return self.section("breakGlass")

    @property
    def exceptions(self) -> Any:
        from pydantic import ValidationError

        from ps019.gate.exceptions import ExceptionSettings
        from ps019.pack.settings import format_validation_error

        try:
            return ExceptionSettings.model_validate(self.settings.raw.get("exceptions") or {})
        except ValidationError as exc:
            raise InputError(format_validation_error("ps019-settings.exceptions", exc)) from None

    def store(self) -> Any:
        if self._store is None:
            from ps019.evidence import open_store

            from ps019.evidence import EvidenceSettings

            evidence = self.settings.section("evidence")
            self._store = open_store(self._store_url or getattr(evidence, "store_url", None), evidence)
            # every grant, close, review and exception read back must be signed by a trusted evidence key
            self._store.trust((evidence or EvidenceSettings()).public_keys())
        return self._store

    def signer(self) -> Any:
        from ps019.evidence import load_signer

        return load_signer(self.settings.section("evidence"))

    def require_trusted_keys(self) -> None:
        if not self.gate.trusted_keys:
            where = self.config_path or f"--policy-pack-config / ${ENV_CONFIG}"
            raise InputError(f"no trusted keys configured (ps019-settings.gate.trustedKeys in {where})")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def known_controls() -> tuple[str, ...]:
    from ps019.controls.registry import all_controls

    return tuple(c.id for c in all_controls())


def _private_key(path: str) -> Any:
    from ps019.gate.signing import load_private_key

    return load_private_key(Path(path).expanduser())


def _fmt(ts: datetime | None) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "-"


def _common(fn: Any) -> Any:
    fn = click.option("--store", "store_url", metavar="URL",
                      help="evidence store (sqlite:///path, s3://bucket/prefix, postgresql://...)")(fn)
    fn = click.option("--policy-pack-config", "config_path", metavar="FILE", type=click.Path(dir_okay=False),
                      help=f"the pack's config JSON (its ps019-settings entry); default ${ENV_CONFIG}")(fn)
    return fn


def _info(message: str) -> None:
    click.echo(message, err=True)


# --- break-glass ----------------------------------------------------------------------------------------------------


def _configure_logging() -> None:
    from ps019.logging import configure_cli

    configure_cli()  # stdout carries only the IDs these commands print; logs go to stderr


@click.group("break-glass")
def break_glass() -> None:
    """Audited emergency override for one stack: open a grant, deploy, close it, have someone else review it."""
    _configure_logging()


@break_glass.command("open")
@click.option("--stack", required=True, metavar="ORG/PROJECT/STACK", help="the one stack the grant is for")
@click.option("--reason", required=True, help="why the normal change path cannot be used")
@click.option("--incident", required=True, metavar="ID", help="the incident this emergency change belongs to")
@click.option("--ttl", required=True, metavar="DURATION", help="lifetime, e.g. 90m or 2h (capped by maxTtlHours)")
@click.option("--waive", "waive", multiple=True, metavar="CONTROL_ID",
              help="a control whose mandatory findings become advisory under this grant (repeat; no wildcards)")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="your operator private key")
@_common
def open_cmd(stack: str, reason: str, incident: str, ttl: str, waive: tuple[str, ...], key_path: str,
             store_url: str | None, config_path: str | None) -> None:
    """Open a break-glass grant bound to your verified identity and STACK; prints the grant ID."""
    from ps019.gate.breakglass import open_grant, parse_duration
    from ps019.cli.operator_identity import resolve_operator_identity

    env = CommandEnv(config_path, store_url)
    try:
        env.require_trusted_keys()
        key = _private_key(key_path)
        identity = resolve_operator_identity(identity_settings=env.section("identity"), gate_settings=env.gate)
        grant = open_grant(env.store(), env.signer(), key, identity, stack, reason=reason, incident=incident,
                           ttl=parse_duration(ttl), waive=list(waive), gate_settings=env.gate,
                           settings=env.break_glass, known_controls=known_controls(),
                           environment_settings=env.settings.section("environments"))
    finally:
        env.close()
    _info(f"break-glass grant {grant.grant_id} opened for {grant.stack} by {grant.operator} "
          f"({identity.verified_by}); expires {_fmt(grant.expires_at)}; waived: "
          f"{', '.join(grant.waived_controls) or 'none'}")
    _info(f"deploy with: PS019_BREAK_GLASS_GRANT={grant.grant_id} pulumi up ...   then: "
          f"ps019 break-glass close {grant.grant_id} --key ...")
    click.echo(grant.grant_id)


@break_glass.command("close")
@click.argument("grant_id", metavar="GRANT")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="the operator's private key (or a security key)")
@click.option("--notes", default="", help="what was done under the grant")
@_common
def close_cmd(grant_id: str, key_path: str, notes: str, store_url: str | None, config_path: str | None) -> None:
    """Close a grant: it can no longer be used, and its review clock starts."""
    from ps019.gate.breakglass import close_grant

    env = CommandEnv(config_path, store_url)
    try:
        env.require_trusted_keys()
        close = close_grant(env.store(), env.signer(), _private_key(key_path), None, grant_id,
                            gate_settings=env.gate, settings=env.break_glass, notes=notes,
                            environment_settings=env.settings.section("environments"))
    finally:
        env.close()
    _info(f"grant {grant_id} closed at {_fmt(close.closed_at)} by {close.closed_by}; a review by a different person "
          f"is due within {env.break_glass.review_sla_hours:g}h")
    click.echo(grant_id)


@break_glass.command("review")
@click.argument("grant_id", metavar="GRANT")
@click.option("--reviewer", required=True, metavar="ID", help="your identity as listed in the trusted keys")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="your private key")
@click.option("--notes", required=True, help="the post-implementation review's findings")
@click.option("--link", "links", multiple=True, metavar="URL", help="retrospective, ticket, dashboards (repeat)")
@_common
def review_cmd(grant_id: str, reviewer: str, key_path: str, notes: str, links: tuple[str, ...],
               store_url: str | None, config_path: str | None) -> None:
    """Record the post-implementation review of a grant (by someone other than its operator)."""
    from ps019.gate.breakglass import review_grant

    env = CommandEnv(config_path, store_url)
    try:
        env.require_trusted_keys()
        review = review_grant(env.store(), env.signer(), _private_key(key_path), reviewer, grant_id, notes=notes,
                              links=list(links), gate_settings=env.gate, settings=env.break_glass,
                              environment_settings=env.settings.section("environments"))
    finally:
        env.close()
    _info(f"review of {grant_id} recorded by {review.reviewer} at {_fmt(review.reviewed_at)}")
    click.echo(grant_id)


def grant_rows(env: CommandEnv, stack: str | None, now: datetime) -> list[dict[str, Any]]:
    from ps019.gate.breakglass import KIND_OPEN, grant_statuses, load_break_glass_records

    store = env.store()
    stacks = {stack} if stack else {s.record.stack_ref for s in store.query(kind=KIND_OPEN)}
    rows = []
    for stack_ref in sorted(stacks):
        for status in grant_statuses(load_break_glass_records(store, stack_ref), now, env.gate, env.break_glass):
            if status.grant.stack != stack_ref:
                continue
            grant = status.grant
            if status.review is not None:
                review = f"done by {status.review.reviewer} {_fmt(status.review.reviewed_at)}"
            elif status.review_overdue:
                review = f"OVERDUE since {_fmt(status.review_due_at)}"
            elif status.state == "invalid":
                review = "-"
            else:
                review = f"due by {_fmt(status.review_due_at)}"
            rows.append({
                "grant_id": grant.grant_id, "stack": grant.stack, "operator": grant.operator,
                "state": status.state, "issued_at": _fmt(grant.issued_at), "expires_at": _fmt(grant.expires_at),
                "closed_at": _fmt(status.closed_at) if status.closed_at else None, "closed_by": status.closed_by,
                "incident": grant.incident, "reason": grant.reason, "waived_controls": list(grant.waived_controls),
                "review": review, "review_overdue": status.review_overdue,
                "reviewer": status.review.reviewer if status.review else None,
                "review_links": list(status.review.links) if status.review else [],
                "problems": list(status.problems), "notices": list(status.notices),
            })
    return rows


@break_glass.command("list")
@click.option("--stack", metavar="ORG/PROJECT/STACK", help="only this stack")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_common
def list_cmd(stack: str | None, fmt: str, store_url: str | None, config_path: str | None) -> None:
    """Grants with their state (active / closed / expired / invalid) and review status (done / due / OVERDUE)."""
    env = CommandEnv(config_path, store_url)
    try:
        rows = grant_rows(env, stack, datetime.now(timezone.utc))
    finally:
        env.close()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="break-glass grants", show_lines=False)
    for column in ("grant", "stack", "operator", "state", "expires / closed", "incident", "waived", "review"):
        table.add_column(column, overflow="fold")
    for row in rows:
        ended = f"closed {row['closed_at']}" if row["closed_at"] else row["expires_at"]
        state = row["state"] + (f" ({'; '.join(row['problems'])})" if row["problems"] else "")
        table.add_row(row["grant_id"], row["stack"], row["operator"], state, ended, row["incident"],
                      ", ".join(row["waived_controls"]) or "-", row["review"])
    Console(width=160).print(table)
    overdue = sum(1 for r in rows if r["review_overdue"])
    if overdue:
        _info(f"{overdue} review(s) overdue")


# --- exceptions -----------------------------------------------------------------------------------------------------


_RELATIVE = re.compile(r"^\s*\d+(\.\d+)?\s*[smhd]\s*$")


def parse_expiry(text: str, now: datetime) -> datetime:
    """An ISO 8601 timestamp (UTC if no offset), a date (expires at 00:00 UTC that day) or a duration (``30d``)."""
    from ps019.gate.breakglass import parse_duration

    if _RELATIVE.match(text):
        return now + parse_duration(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            return datetime.combine(date.fromisoformat(text.strip()), time(0), tzinfo=timezone.utc)
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--expires {text!r}: use an ISO date/time (2026-12-31, 2026-12-31T18:00Z) or a duration "
                         "(30d)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@click.group("exception")
def exception() -> None:
    """Approved, expiring exceptions for one control on one resource (or URN pattern) of one stack."""
    _configure_logging()


@exception.command("add")
@click.option("--control", "control_id", required=True, metavar="ID", help="the one control excepted")
@click.option("--resource", required=True, metavar="URN-OR-GLOB",
              help="the resource's URN, or an fnmatch pattern over this stack's URNs")
@click.option("--stack", required=True, metavar="ORG/PROJECT/STACK")
@click.option("--reason", required=True, help="why the control cannot be met (risk acceptance)")
@click.option("--expires", required=True, help="ISO date/time or a duration such as 30d")
@click.option("--approved-by", "approved_by", required=True, metavar="ID",
              help="the approver's identity as listed in the trusted keys")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="the approver's private key (role approver or security)")
@_common
def add_cmd(control_id: str, resource: str, stack: str, reason: str, expires: str, approved_by: str, key_path: str,
            store_url: str | None, config_path: str | None) -> None:
    """Sign and record an exception; prints its ID."""
    from ps019.gate.exceptions import add_exception

    now = datetime.now(timezone.utc)
    env = CommandEnv(config_path, store_url)
    try:
        env.require_trusted_keys()
        exc = add_exception(env.store(), env.signer(), _private_key(key_path), control_id=control_id,
                            resource=resource, stack_ref=stack, reason=reason, expires_at=parse_expiry(expires, now),
                            approved_by=approved_by, gate_settings=env.gate, settings=env.exceptions,
                            known_controls=known_controls(), now=now,
                            environment_settings=env.settings.section("environments"))
    finally:
        env.close()
    _info(f"exception {exc.exception_id}: {exc.control_id} on {exc.resource} ({exc.stack}) approved by "
          f"{exc.approved_by} until {_fmt(exc.expires_at)}")
    click.echo(exc.exception_id)


@exception.command("list")
@click.option("--stack", metavar="ORG/PROJECT/STACK", help="only this stack")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_common
def exception_list_cmd(stack: str | None, fmt: str, store_url: str | None, config_path: str | None) -> None:
    """Exceptions with their status: active, or ignored with the reason (expired, not approved, ...)."""
    from ps019.gate.exceptions import KIND_EXCEPTION, active_exceptions, load_exception_records

    now = datetime.now(timezone.utc)
    env = CommandEnv(config_path, store_url)
    rows = []
    try:
        store = env.store()
        stacks = {stack} if stack else {s.record.stack_ref for s in store.query(kind=KIND_EXCEPTION)}
        for stack_ref in sorted(stacks):
            valid, ignored = active_exceptions(load_exception_records(store, stack_ref), stack_ref, now, env.gate,
                                               env.exceptions, known_controls=known_controls())
            for exc, reason in [(e, "") for e in valid] + list(ignored):
                base = {"stack": stack_ref, "status": "active" if not reason else "ignored", "reason": reason or None}
                if exc is not None:
                    base.update({"exception_id": exc.exception_id, "control_id": exc.control_id,
                                 "resource": exc.resource, "approved_by": exc.approved_by,
                                 "expires_at": _fmt(exc.expires_at), "justification": exc.reason})
                rows.append(base)
    finally:
        env.close()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="exceptions")
    for column in ("exception", "stack", "control", "resource", "approved by", "expires", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = row["status"] + (f": {row['reason']}" if row["reason"] else "")
        table.add_row(row.get("exception_id", "?"), row["stack"], row.get("control_id", "?"),
                      row.get("resource", "?"), row.get("approved_by", "?"), row.get("expires_at", "?"), status)
    Console(width=160).print(table)
