"""``--format sarif``: SARIF 2.1.0 (OASIS), one run per engine pass.

Rules are the pack's policies (help text from the policy and, for ps019 controls, the clause and remediation);
results carry level ``error`` for mandatory and ``warning`` for advisory violations; the resource is a logical
location whose fully qualified name is its URN, and the analyzed file (stack export or program) is the physical
location, because code-scanning services (GitHub) only display results that have one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePath
from urllib.parse import quote
from typing import Any, Mapping

from ps019.output.report import BLOCKING_LEVELS

SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

# GitHub code scanning reads ``security-severity`` (a CVSS-like score) to rank security results.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def sarif_level(enforcement_level: str) -> str:
    if enforcement_level in BLOCKING_LEVELS:
        return "error"
    if enforcement_level == "disabled":
        return "none"
    return "warning"


def render_sarif(report: Mapping[str, Any]) -> str:
    return json.dumps(build_sarif(report), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def build_sarif(report: Mapping[str, Any]) -> dict[str, Any]:
    source = report.get("source") or {}
    runs = [_run(report, p, source) for p in report.get("passes", [])]
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": runs}


def _run(report: Mapping[str, Any], pass_: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    controls = report.get("controls") or {}
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}

    def rule_for(name: str, policy: Mapping[str, Any] | None) -> int:
        if name not in rule_index:
            rule_index[name] = len(rules)
            rules.append(_rule(name, policy or {}, controls.get(name)))
        return rule_index[name]

    for policy in pass_.get("policies", []):
        rule_for(policy["name"], policy)

    locations: list[dict[str, Any]] = []
    location_index: dict[str, int] = {}
    artifact = {"uri": _uri(_artifact_path(source))} if source.get("path") else None
    results = []
    for d in pass_.get("diagnostics", []):
        urn = d["urn"]
        if urn not in location_index:
            location_index[urn] = len(locations)
            locations.append(_logical_location(urn, d.get("resource_type", "")))
        location: dict[str, Any] = {"logicalLocations": [{
            "fullyQualifiedName": urn, "name": _urn_name(urn), "kind": "resource", "index": location_index[urn]}]}
        if artifact:
            location["physicalLocation"] = {"artifactLocation": dict(artifact)}
        index = rule_for(d["policy"], None)
        results.append({
            "ruleId": d["policy"],
            "ruleIndex": index,
            "level": sarif_level(d["level"]),
            "message": {"text": d["message"] or d["policy"]},
            "locations": [location],
            "partialFingerprints": {"ps019ResourcePolicy/v1": _fingerprint(d["policy"], urn)},
            "properties": {
                "enforcementLevel": d["level"],
                "severity": d["severity"],
                "resourceType": d.get("resource_type", ""),
                "policyPack": d.get("pack", ""),
                "analysisPhase": d.get("phase", ""),
            },
        })

    pack = pass_.get("pack") or {}
    driver: dict[str, Any] = {"name": pack.get("name") or "policy-pack", "rules": rules}
    if pack.get("version"):
        driver["version"] = pack["version"]
    tool = report.get("tool") or {}
    run: dict[str, Any] = {
        "tool": {"driver": driver, "extensions": [{"name": tool.get("name", "ps019"),
                                                     "version": tool.get("version", "")}]},
        "automationDetails": {"id": f"ps019/{report.get('stack', '')}/{pass_.get('phase', '')}/"},
        "invocations": [{
            # The pass completed (a blocked update is a completed, failed pass; a pack crash never reaches here).
            "executionSuccessful": True,
            "properties": {
                "phase": pass_.get("phase", ""),
                "dryRun": bool(pass_.get("dry_run")),
                "blockedAt": pass_.get("blocked_at"),
                "stackPoliciesRan": bool(pass_.get("stack_analyzed")),
                "resourcesAnalyzed": pass_.get("resources_analyzed", 0),
            },
        }],
        "logicalLocations": locations,
        "results": results,
        "properties": {"stack": report.get("stack", ""), "command": report.get("command", "")},
    }
    if artifact:
        run["artifacts"] = [{"location": dict(artifact),
                             "description": {"text": f"{source.get('kind', 'input')} analyzed by ps019"}}]
    return run


def _rule(name: str, policy: Mapping[str, Any], control: Mapping[str, Any] | None) -> dict[str, Any]:
    description = policy.get("description") or (control or {}).get("title") or name
    help_parts = [description]
    if policy.get("message") and policy["message"] != description:
        help_parts.append(policy["message"])
    if control:
        if control.get("clause"):
            help_parts.append(f"Standard: {control['clause']}")
        if control.get("rationale"):
            help_parts.append(f"Why: {control['rationale']}")
        if control.get("remediation"):
            help_parts.append(f"Fix: {control['remediation']}")
    rule: dict[str, Any] = {
        "id": name,
        "name": name,
        "shortDescription": {"text": (control or {}).get("title") or description},
        "fullDescription": {"text": description},
        "help": {"text": "\n\n".join(help_parts)},
        "defaultConfiguration": {"level": sarif_level(policy.get("enforcement_level") or "advisory")},
    }
    severity = policy.get("severity") or (control or {}).get("severity") or ""
    properties: dict[str, Any] = {"tags": ["security", "pulumi-policy"]}
    if severity in _SECURITY_SEVERITY:
        properties["security-severity"] = _SECURITY_SEVERITY[severity]
        properties["severity"] = severity
    if control and control.get("clause"):
        properties["clause"] = control["clause"]
    rule["properties"] = properties
    return rule


def _logical_location(urn: str, resource_type: str) -> dict[str, Any]:
    location = {"fullyQualifiedName": urn, "name": _urn_name(urn), "kind": "resource"}
    if resource_type:
        location["decoratedName"] = resource_type
    return location


def _urn_name(urn: str) -> str:
    return urn.split("::", 3)[-1] if urn.count("::") >= 3 else urn


def _artifact_path(source: Mapping[str, Any]) -> str:
    """The file a result points at: the stack export, or a program's project file (a program is a directory, and
    code-scanning services locate results in files; Pulumi.yaml is the one file every Pulumi project has)."""
    path = str(source.get("path", ""))
    if source.get("kind") == "program":
        return str(PurePath(path) / "Pulumi.yaml")
    return path


def _uri(path: str) -> str:
    # A relative path stays relative (GitHub resolves it against the repository root); an absolute one becomes file:.
    pure = PurePath(path)
    if pure.is_absolute():
        return Path(path).as_uri()
    return quote(pure.as_posix())


def _fingerprint(policy: str, urn: str) -> str:
    return hashlib.sha256(f"{policy}\0{urn}".encode()).hexdigest()[:32]
