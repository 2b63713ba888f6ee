"""``--format junit``: JUnit XML that GitLab, Jenkins and Azure DevOps render as test reports.

As Checkov does, every (policy, resource) evaluation is one test case: a violation is a ``<failure>`` (its ``type`` is
the enforcement level, so an advisory finding is visible but distinguishable), a policy that did not apply is
``<skipped>`` with the pack's reason, and every other enabled policy passed. One ``<testsuite>`` per pass and pack.
The document validates against the Apache Ant JUnit schema (tests/data/junit/JUnit.xsd).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any, Mapping

STACK_CASE = "the stack (AnalyzeStack)"


def render_junit(report: Mapping[str, Any], now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S")
    host = socket.gethostname() or "localhost"
    root = ET.Element("testsuites")
    titles = {name: entry.get("title", "") for name, entry in (report.get("controls") or {}).items()}
    for index, pass_ in enumerate(report.get("passes", [])):
        root.append(_suite(report, pass_, index, stamp, host, titles))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(report: Mapping[str, Any], pass_: Mapping[str, Any], index: int, stamp: str, host: str,
           titles: Mapping[str, str]) -> ET.Element:
    pack = pass_.get("pack") or {}
    pack_label = f"{pack.get('name') or 'pack'}@{pack.get('version') or '?'}"
    suite = ET.Element("testsuite", {"name": f"{pass_.get('phase', 'pass')}: {pack_label} on {report.get('stack', '')}",
                                     "package": str(pack.get("name") or "pack"), "id": str(index),
                                     "timestamp": stamp, "hostname": host})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("stack", report.get("stack", "")), ("phase", pass_.get("phase", "")),
                        ("mode", pass_.get("mode", "deployment")), ("pack", pack_label),
                        ("blocked_at", pass_.get("blocked_at") or ""), ("result", "failed" if pass_.get("failed")
                                                                                   else "passed")):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    descriptions = {p["name"]: p.get("description", "") for p in pass_.get("policies", [])}
    diagnostics = list(pass_.get("diagnostics", []))
    used: set[int] = set()
    tests = failures = skipped = 0
    for summary in pass_.get("summaries", []):
        urn = summary.get("urn") or ""
        label = urn or STACK_CASE
        for policy in summary.get("passed", []):
            _case(suite, label, policy, titles, descriptions)
            tests += 1
        for policy, reason in summary.get("not_applicable", {}).items():
            case = _case(suite, label, policy, titles, descriptions)
            ET.SubElement(case, "skipped", {"message": f"not applicable: {reason}"})
            tests += 1
            skipped += 1
        for policy in summary.get("failed", []):
            # A resource's violations carry its URN; a stack policy's may name any resource (or the root).
            found = [i for i, d in enumerate(diagnostics) if i not in used and d["policy"] == policy and
                     (d.get("phase") == "analyze_stack" if not urn else (d["urn"] == urn and
                                                                          d.get("phase") == "analyze"))]
            used.update(found)
            _failure(_case(suite, label, policy, titles, descriptions), [diagnostics[i] for i in found])
            tests += 1
            failures += 1
    for i, d in enumerate(diagnostics):  # violations outside any summary (remediations; an engine without summaries)
        if i in used:
            continue
        _failure(_case(suite, d["urn"], d["policy"], titles, descriptions), [d])
        tests += 1
        failures += 1
    ET.SubElement(suite, "system-out").text = "\n".join(pass_.get("pack_output", []))
    ET.SubElement(suite, "system-err").text = "\n".join(pass_.get("warnings", []))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", "0")
    return suite


def _case(suite: ET.Element, urn: str, policy: str, titles: Mapping[str, str],
          descriptions: Mapping[str, str]) -> ET.Element:
    title = titles.get(policy) or descriptions.get(policy) or ""
    return ET.SubElement(suite, "testcase", {"name": f"[{policy}] {title}".strip(), "classname": urn, "time": "0"})


def _failure(case: ET.Element, diagnostics: list[Mapping[str, Any]]) -> None:
    levels = [d.get("level", "") for d in diagnostics]
    level = "mandatory" if "mandatory" in levels or "remediate" in levels else (levels[0] if levels else "advisory")
    messages = [d.get("message", "") for d in diagnostics]
    first = messages[0].splitlines() if messages else []
    headline = first[-1] if first else ""
    element = ET.SubElement(case, "failure", {"type": level, "message": headline[:500]})
    element.text = "\n\n".join(messages)
