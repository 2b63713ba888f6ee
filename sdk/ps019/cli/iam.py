"""``ps019 iam check``: the IAM verdict rule (docs/iam.md) as a standalone linter over policy documents.

Kept light on purpose: importing this module pulls in click and ps019.iam only (no pulumi, no boto3); rich is
imported only for the table format, so ``--format json`` over thousands of files stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ps019.iam import IAM_DATA_VERSION, Category, analyze_policy

_EXIT = {"allow": 0, "deny": 1, "error": 2}


@click.group()
def iam() -> None:
    """Analyse IAM policy documents with the PS-019 least-privilege verdict rule."""


@iam.command("check")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--kind", type=click.Choice(["identity", "trust", "resource"]), default="identity", show_default=True,
              help="identity: a permission policy; trust: a role's assume-role policy; resource: a bucket, key, "
                   "queue, topic, repository, secret, bus or API policy.")
@click.option("--owner-account", "owners", multiple=True, metavar="ACCOUNT_ID",
              help="resource: the account that owns the resource (repeatable; default: the accounts in its ARNs).")
@click.option("--role-can-write/--role-read-only", "can_write", default=None,
              help="trust: whether the role's permissions include writes (then an OIDC trust must also pin a "
                   "branch or environment); default: unknown, reported as an advisory.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif"]), default="table", show_default=True)
def check(files: tuple[str, ...], kind: str, owners: tuple[str, ...], can_write: bool | None, fmt: str) -> None:
    """Check each FILE (one policy document per file; '-' reads stdin).

    Exit status: 0 when every document is allowed (advisories may be shown), 1 when any is denied, 2 when any is
    an error (unreadable file, invalid JSON, or a document that breaks the IAM policy grammar)."""
    results = [check_file(name, kind, owners=owners, can_write=can_write) for name in files]
    if fmt == "json":
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
    elif fmt == "sarif":
        click.echo(json.dumps(to_sarif(results), indent=2, ensure_ascii=False))
    else:
        _render_table(results)
    raise SystemExit(max(_EXIT[r["verdict"]] for r in results))


def check_file(name: str, kind: str, owners: tuple[str, ...] = (), can_write: bool | None = None) -> dict[str, Any]:
    """One output object: ``{"file", "kind", "verdict", "findings"}`` plus ``"message"`` on errors."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        return {"file": name, "kind": kind, "verdict": "error", "findings": [],
                "message": f"cannot read file: {exc.strerror or exc}"}
    result = analyze_policy(data, kind=kind, owner_accounts=owners, can_write=can_write)  # type: ignore[arg-type]
    return {"file": name, **result.to_dict()}


# ---------------------------------------------------------------------------------------------------------------
# table


def _render_table(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    table = Table(show_lines=True, title_justify="left")
    table.add_column("File", overflow="fold", ratio=2)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Category", no_wrap=True)
    table.add_column("Finding / fix", overflow="fold", ratio=6)
    style = {"allow": "green", "deny": "bold red", "error": "bold magenta"}
    for r in results:
        verdict = f"[{style[r['verdict']]}]{r['verdict']}[/]"
        if r["verdict"] == "error":
            table.add_row(escape(r["file"]), verdict, "", "", escape(r["message"]))
        elif not r["findings"]:
            table.add_row(escape(r["file"]), verdict, "", "", "")
        for f in r["findings"]:
            table.add_row(escape(r["file"]), verdict + (" [dim](advisory)[/]" if f.get("advisory") else ""),
                          f["severity"], f["category"],
                          escape(f["message"]) + "\n[dim]fix: " + escape(f["fix"]) + "[/]")
    console.print(table)
    counts = {v: sum(1 for r in results if r["verdict"] == v) for v in ("allow", "deny", "error")}
    console.print(f"{len(results)} document(s): {counts['allow']} allowed, {counts['deny']} denied, "
                  f"{counts['error']} error(s)  [dim](IAM data {IAM_DATA_VERSION})[/]")


# ---------------------------------------------------------------------------------------------------------------
# SARIF 2.1.0

_SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
_ERROR_RULE = "iam-policy-error"


def to_sarif(results: list[dict[str, Any]]) -> dict[str, Any]:
    rule_ids = [c.value for c in Category] + [_ERROR_RULE]
    rules = [
        {
            "id": rid,
            "name": rid.replace("-", " ").title().replace(" ", ""),
            "shortDescription": {"text": "IAM document breaks the policy grammar or is not valid JSON"
                                 if rid == _ERROR_RULE else f"IAM {rid.replace('-', ' ')}"},
            "helpUri": "https://github.com/ps019/ps019/blob/main/docs/iam.md",
            "properties": {"tags": ["security", "iam"]},
        }
        for rid in rule_ids
    ]
    index = {rid: i for i, rid in enumerate(rule_ids)}
    out = []
    for r in results:
        location = {"physicalLocation": {"artifactLocation": {"uri": _uri(r["file"])}}}
        if r["verdict"] == "error":
            out.append({"ruleId": _ERROR_RULE, "ruleIndex": index[_ERROR_RULE], "level": "error",
                        "message": {"text": r["message"]}, "locations": [location]})
        for f in r["findings"]:
            out.append({
                "ruleId": f["category"], "ruleIndex": index[f["category"]],
                "level": "warning" if f.get("advisory") else "error",
                "message": {"text": f"{f['message']}. Fix: {f['fix']}"},
                "locations": [location],
                "properties": {"severity": f["severity"], "security-severity": _SECURITY_SEVERITY[f["severity"]],
                               "statements": [str(s) for s in f["statements"]], "actions": f["actions"],
                               "kind": r["kind"]},
            })
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "ps019 iam check", "informationUri": "https://github.com/ps019/ps019",
                                "version": IAM_DATA_VERSION, "rules": rules}},
            "results": out,
        }],
    }


def _uri(name: str) -> str:
    if name == "-":
        return "stdin"
    from urllib.parse import quote

    return quote(Path(name).as_posix())
