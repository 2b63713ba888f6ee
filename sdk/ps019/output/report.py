"""The one plain-data shape every output format is rendered from.

``build_report`` turns the engine's pass results (``ps019.engine.PassResult`` or anything with the same attributes)
into a JSON-ready dict. The formatters (table, JSON, SARIF) only read that dict, so they are pure and the three
formats can never disagree about what happened. The shape is documented in docs/output-formats.md and versioned by
``SCHEMA_VERSION``: adding a key is compatible, renaming or removing one bumps the version.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

SCHEMA_VERSION = 1

# Engine enforcement levels that stop a run (the engine treats "remediate" like "mandatory" for violations).
BLOCKING_LEVELS = frozenset({"mandatory", "remediate"})


def _text(value: Any) -> str:
    """Enum members (ps019.model.Level, Severity) and plain strings alike -> their string value."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _attr(obj: Any, *names: str, default: Any = None) -> Any:
    """Read the first present attribute (or mapping key) of ``names``: the engine's result objects and plain dicts
    from a saved report are both accepted."""
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return default


def diagnostic_to_dict(diagnostic: Any) -> dict[str, Any]:
    return {
        "urn": _text(_attr(diagnostic, "urn")),
        "resource_type": _text(_attr(diagnostic, "resource_type", "type")),
        "policy": _text(_attr(diagnostic, "policy_name", "policy")),
        "pack": _text(_attr(diagnostic, "pack")),
        "level": _text(_attr(diagnostic, "level")).lower(),
        "severity": _text(_attr(diagnostic, "severity")).lower(),
        "message": _text(_attr(diagnostic, "message")),
        "phase": _text(_attr(diagnostic, "phase")),
    }


def policy_to_dict(policy: Any) -> dict[str, Any]:
    return {
        "name": _text(_attr(policy, "name")),
        "description": _text(_attr(policy, "description")),
        "message": _text(_attr(policy, "message")),
        "enforcement_level": _text(_attr(policy, "enforcement_level", "enforcementLevel", "level")).lower(),
        "severity": _text(_attr(policy, "severity")).lower(),
        "kind": _text(_attr(policy, "kind", default="resource")),
    }


def pass_to_dict(result: Any, *, phase: str) -> dict[str, Any]:
    """One engine pass (preview or update) as plain data."""
    diagnostics = [diagnostic_to_dict(d) for d in (_attr(result, "diagnostics", default=()) or ())]
    analyzed = [str(u) for u in (_attr(result, "analyzed_urns", default=()) or ())]
    dry_run = _attr(result, "dry_run")
    summaries = [summary_to_dict(s) for s in (_attr(result, "summaries", default=()) or ())]
    return {
        "phase": phase,
        "dry_run": bool(dry_run) if dry_run is not None else phase == "preview",
        "mode": _text(_attr(result, "mode", default="deployment")),
        "cancelled": bool(_attr(result, "cancelled", default=False)),
        "pack": {
            "name": _text(_attr(result, "pack_name", "pack")),
            "version": _text(_attr(result, "pack_version", "version")),
        },
        "policies": [policy_to_dict(p) for p in (_attr(result, "policies", default=()) or ())],
        "resources_analyzed": len(analyzed),
        "analyzed_urns": analyzed,
        "blocked_at": _attr(result, "blocked_at") or None,
        "stack_analyzed": bool(_attr(result, "stack_analyzed", default=False)),
        "failed": bool(_attr(result, "failed", default=False)),
        "counts": count_levels(diagnostics),
        "diagnostics": diagnostics,
        "compliance": count_compliance(summaries),
        "summaries": summaries,
        "pack_output": [str(x) for x in (_attr(result, "pack_output", default=()) or ())],
        "warnings": [str(x) for x in (_attr(result, "warnings", default=()) or ())],
    }


def summary_to_dict(summary: Any) -> dict[str, Any]:
    """One engine policy summary (ps019.engine.PolicySummary): the resource (``""``: the stack), and which enabled
    policies passed, failed, or did not apply (with the pack's reason)."""
    return {
        "urn": _text(_attr(summary, "urn")),
        "kind": _text(_attr(summary, "kind", default="resource")),
        "passed": sorted(str(x) for x in (_attr(summary, "passed", default=()) or ())),
        "failed": sorted(str(x) for x in (_attr(summary, "failed", default=()) or ())),
        "not_applicable": {str(k): str(v) for k, v in
                           sorted(dict(_attr(summary, "not_applicable", default={}) or {}).items())},
    }


def count_compliance(summaries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Policy evaluations, as ``pulumi policy compliance`` counts them (passed = enabled - failed - not applicable)."""
    counts = {"passed": 0, "failed": 0, "not_applicable": 0}
    for s in summaries:
        for key in counts:
            counts[key] += len(s[key])
    return counts


def count_levels(diagnostics: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = {"mandatory": 0, "advisory": 0}
    for d in diagnostics:
        counts["mandatory" if d["level"] in BLOCKING_LEVELS else "advisory"] += 1
    return counts


def build_report(
    passes: Sequence[tuple[str, Any]],
    *,
    command: str,
    stack: str,
    source_kind: str,
    source_path: str,
    warnings: Sequence[str] = (),
    controls: Mapping[str, Mapping[str, Any]] | None = None,
    skipped: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The report for one ``ps019 analyze`` / ``ps019 up`` invocation.

    ``passes`` is ``[(phase, PassResult), ...]`` in the order they ran. ``controls`` maps a policy name to the
    ps019 control catalogue entry (clause, remediation, ...) when the pack is ps019's, so outputs can cite clauses.
    ``skipped`` lists passes that did not run and why (``ps019 up`` stops before the update when the preview failed).
    """
    from ps019 import __version__

    rendered = [pass_to_dict(result, phase=phase) for phase, result in passes]
    mandatory = sum(p["counts"]["mandatory"] for p in rendered)
    failed = any(p["failed"] for p in rendered) or mandatory > 0
    used_policies = {d["policy"] for p in rendered for d in p["diagnostics"]} | {
        pol["name"] for p in rendered for pol in p["policies"]}
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "ps019", "version": __version__},
        "command": command,
        "stack": stack,
        "source": {"kind": source_kind, "path": source_path},
        "result": "failed" if failed else "passed",
        "exit_code": 1 if failed else 0,
        "warnings": list(warnings),
        "passes": rendered,
        "skipped_passes": [dict(s) for s in skipped],
        "controls": {name: _control_entry(info) for name, info in sorted((controls or {}).items())
                     if name in used_policies},
    }


def _control_entry(info: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _text(info.get(key)) for key in ("title", "clause", "rationale", "remediation", "severity")}


def control_catalogue(policy_names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Catalogue entries (from ``ps019.controls.registry``) for the policy names that are ps019 control IDs."""
    wanted = {n for n in policy_names if n.startswith("PS019-")}
    if not wanted:
        return {}
    try:
        from ps019.controls.registry import all_controls

        catalogue = all_controls()
    except Exception:  # noqa: BLE001 - a broken control module must not hide the analysis result itself
        return {}
    return {
        c.id: {"title": c.title, "clause": c.clause, "rationale": c.rationale, "remediation": c.remediation,
               "severity": _text(c.severity)}
        for c in catalogue if c.id in wanted
    }


def group_by_resource(diagnostics: Sequence[Mapping[str, Any]], order: Sequence[str] = ()) -> list[tuple[str, list]]:
    """Diagnostics grouped by URN, resources in analysis order (then any others in first-seen order)."""
    groups: dict[str, list] = {}
    rank = {urn: i for i, urn in enumerate(order)}
    for d in diagnostics:
        groups.setdefault(d["urn"], []).append(d)
    return sorted(groups.items(), key=lambda item: rank.get(item[0], len(rank)))
