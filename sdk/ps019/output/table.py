"""``--format table`` (the default): per pass, diagnostics grouped by resource, then a one-line summary."""

from __future__ import annotations

from typing import Any, Mapping

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ps019.output.report import BLOCKING_LEVELS, group_by_resource

_LEVEL_STYLE = {"mandatory": "bold red", "remediate": "bold red", "advisory": "yellow", "disabled": "dim"}


def render_table(report: Mapping[str, Any], console: Console) -> None:
    for warning in report.get("warnings", []):
        console.print(Text(f"warning: {warning}", style="yellow"))
    for pass_ in report.get("passes", []):
        render_pass(report, pass_, console)
    for skipped in report.get("skipped_passes", []):
        console.print(Text(f"{skipped.get('phase', '?')}: not run: {skipped.get('reason', '')}", style="bold"))
    verdict = report.get("result", "passed")
    console.print(Text(f"result: {verdict}", style="bold red" if verdict == "failed" else "bold green"))


def render_pass(report: Mapping[str, Any], pass_: Mapping[str, Any], console: Console) -> None:
    pack = pass_.get("pack") or {}
    pack_label = pack.get("name", "") + (f"@{pack['version']}" if pack.get("version") else "")
    for line in pass_.get("warnings", []):
        console.print(Text(f"warning: {line}", style="yellow"))
    for line in pass_.get("pack_output", []):
        console.print(Text(f"{pack_label}: {line}", style="dim"))
    title = f"{pass_.get('phase', '')} of {report.get('stack', '')} with policy pack {pack_label}"
    diagnostics = pass_.get("diagnostics", [])
    if diagnostics:
        table = Table(title=escape(title), title_justify="left", show_lines=False, expand=False)
        table.add_column("Resource", overflow="fold", ratio=3)
        table.add_column("Level", no_wrap=True)
        table.add_column("Policy", overflow="fold", ratio=2)
        table.add_column("Message", overflow="fold", ratio=5)
        for urn, group in group_by_resource(diagnostics, pass_.get("analyzed_urns", [])):
            table.add_section()
            for i, d in enumerate(group):
                resource = _resource_label(urn, d.get("resource_type", "")) if i == 0 else Text("")
                table.add_row(resource, Text(d["level"], style=_LEVEL_STYLE.get(d["level"], "")),
                              Text(d["policy"]), Text(d["message"]))
        console.print(table)
    else:
        console.print(Text(title, style="bold"))
        console.print("  no policy violations")
    console.print(Text(summary_line(pass_), style="bold"))
    compliance = pass_.get("compliance")
    if compliance and any(compliance.values()):
        # The engine's per-resource policy summaries (pulumi policy compliance): passed = enabled - failed - n/a.
        console.print(Text(f"  policy evaluations: {compliance['passed']} passed · {compliance['failed']} failed · "
                           f"{compliance['not_applicable']} not applicable", style="dim"))
    controls = report.get("controls") or {}
    cited = [name for name in dict.fromkeys(d["policy"] for d in diagnostics) if name in controls]
    for name in cited:
        entry = controls[name]
        console.print(Text(f"  {name}: {entry.get('title', '')} ({entry.get('clause', '')})", style="dim"))
    console.print()


def summary_line(pass_: Mapping[str, Any]) -> str:
    counts = pass_.get("counts") or {}
    parts = [
        f"{pass_.get('phase', '')}: {pass_.get('resources_analyzed', 0)} resources analyzed",
        f"{counts.get('mandatory', 0)} mandatory",
        f"{counts.get('advisory', 0)} advisory",
    ]
    if pass_.get("blocked_at"):
        parts.append(f"blocked at {pass_['blocked_at']}")
    parts.append("stack policies ran" if pass_.get("stack_analyzed") else "stack policies did not run")
    if pass_.get("cancelled"):
        parts.append("CANCELLED")
    if pass_.get("mode") == "analyze":
        parts.append("analysis only (no ConfigureStack)")
    mandatory = any(d["level"] in BLOCKING_LEVELS for d in pass_.get("diagnostics", []))
    parts.append("FAILED" if pass_.get("failed") or mandatory else "passed")
    return " · ".join(parts)


def _resource_label(urn: str, resource_type: str) -> Text:
    name = urn.split("::", 3)[-1] if urn.count("::") >= 3 else urn
    label = Text(name, style="bold")
    if resource_type:
        label.append(f"\n{resource_type}", style="cyan")
    return label
