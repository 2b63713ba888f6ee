"""``ps019 controls``: the control catalogue (every control in ``ps019.controls.registry``), the same list the pack's
policies are generated from."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


def catalogue() -> list[dict[str, Any]]:
    from ps019.controls.registry import all_controls

    return [_row(c) for c in all_controls()]


def _row(c: Any) -> dict[str, Any]:
    """One control's catalogue entry; its parameters, defaults and required ones come from its config model."""
    from ps019.pack.schema import control_config_schema

    properties, required = control_config_schema(c)
    return {
        "id": c.id,
        "title": c.title,
        "clause": c.clause,
        "severity": getattr(c.severity, "value", c.severity),
        "level": getattr(c.level, "value", c.level),
        "scope": c.scope,
        "resource_types": list(c.resource_types) if c.resource_types is not None else None,
        "rationale": c.rationale,
        "remediation": c.remediation,
        "config_schema": properties,
        "required": required,
        "defaults": {name: schema["default"] for name, schema in properties.items() if "default" in schema},
    }


def _markdown(rows: list[dict[str, Any]]) -> str:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| ID | Title | Clause | Level | Severity | Applies to |", "|---|---|---|---|---|---|"]
    for r in rows:
        applies = "every resource" if r["resource_types"] is None else ", ".join(f"`{t}`" for t in r["resource_types"])
        if r["scope"] == "stack":
            applies = "the whole stack (AnalyzeStack)"
        elif r["scope"] == "findings":
            applies = "the findings of every resource"
        lines.append(f"| [{r['id']}](#{r['id'].lower()}) | {cell(r['title'])} | {cell(r['clause'])} | {r['level']} | "
                     f"{r['severity']} | {applies} |")
    for r in rows:
        lines += ["", f"## {r['id']}", "", f"**{r['title']}** — {r['level']}, {r['severity']}.", "",
                  f"*Clause:* {r['clause']}", "", f"*Why:* {r['rationale']}", "", f"*Fix:* {r['remediation']}"]
        if r["config_schema"]:
            lines += ["", "*Parameters* (`--policy-pack-config`):", ""]
            for name, schema in r["config_schema"].items():
                default = r["defaults"].get(name)
                shown = f" (default `{json.dumps(default)}`)" if name in r["defaults"] else ""
                lines.append(f"- `{name}`{shown}: {cell(schema.get('description', schema.get('type', '')))}")
    return "\n".join(lines) + "\n"


@click.command("controls")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
def controls(fmt: str) -> None:
    """List every ps019 control: stable ID, title, the PS-019 clause it enforces, default level and severity."""
    rows = catalogue()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if fmt == "markdown":
        click.echo(_markdown(rows), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ps019 controls ({len(rows)})", title_justify="left")
    for column in ("ID", "Title", "Clause", "Level", "Severity"):
        table.add_column(column, overflow="fold", no_wrap=column in ("ID", "Level", "Severity"))
    for r in rows:
        table.add_row(r["id"], r["title"], r["clause"], r["level"], r["severity"])
    is_terminal = sys.stdout.isatty()
    Console(file=sys.stdout, width=None if is_terminal else 140, highlight=False).print(table)
