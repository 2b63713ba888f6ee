"""Exports of stored evidence records for auditors and systems of record.

* **JSONL** -- one ``{"record": ..., "envelope": ...}`` object per line, exactly as stored: lossless, and the file
  can be verified offline (``ps019 evidence verify --file export.jsonl``) because every record keeps its DSSE
  envelope and chain fields.
* **CSV** -- one row per record with flat columns an auditor filters in a spreadsheet, plus ``record_json`` and
  ``envelope_json`` columns so the CSV is lossless too (:func:`read_csv` gives back the same records).
* **OSCAL** -- an assessment-results document (OSCAL 1.1.2): one result for the exported period, one observation per
  record (its ``relevant-evidence`` points at ``evidence:sha256:<record hash>``), and findings for the change-control
  objectives the records evidence. UUIDs are uuid5 over record IDs and hashes, so the same records always export to
  the same document. Validated with compliance-trestle in tests/test_audit_export.py.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timezone
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from ps019.errors import InputError
from ps019.evidence.audit import REQUIRED_FIELDS, is_production_update, missing_fields
from ps019.evidence.store import StoredRecord

OSCAL_VERSION = "1.1.2"
OSCAL_NS = "https://ps019.dev/ns/oscal"
_UUID_NS = uuid.UUID("6f1f3f3e-7d1c-5b7e-9a53-0c5e0a1c9019")  # ps019's namespace for reproducible OSCAL UUIDs

CSV_COLUMNS = (
    "record_id", "kind", "started_at", "ended_at", "organization", "project", "stack", "environment", "change_class",
    "outcome", "actor", "actor_verified", "ci_run_url", "git_commit", "source_digest", "policy_pack",
    "change_request", "approvals_verified", "break_glass", "exceptions", "violations", "mandatory_violations",
    "resources", "missing_required_fields", "chain_key", "sequence", "prev_hash", "hash", "record_json",
    "envelope_json",
)


# --- JSONL --------------------------------------------------------------------------------------------------------


def write_jsonl(records: Iterable[StoredRecord], out: IO[str]) -> int:
    n = 0
    for rec in records:
        out.write(json.dumps({"record": rec.document, "envelope": rec.envelope}, sort_keys=True,
                             separators=(",", ":")))
        out.write("\n")
        n += 1
    return n


def read_jsonl(lines: Iterable[str]) -> Iterator[StoredRecord]:
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            yield StoredRecord(document=obj["record"], envelope=obj["envelope"])
        except (ValueError, KeyError, TypeError, RecursionError):
            raise InputError(f"line {lineno} is not an exported evidence record") from None


# --- CSV ----------------------------------------------------------------------------------------------------------


def csv_row(rec: StoredRecord) -> dict[str, str]:
    d = rec.document
    actor = d.get("actor") or {}
    artifact = d.get("artifact") or {}
    pack = artifact.get("policy_pack") or {}
    results = d.get("policy_results") or []
    bg = d.get("break_glass") or {}
    return {
        "record_id": d.get("record_id", ""), "kind": d.get("kind", ""), "started_at": d.get("started_at") or "",
        "ended_at": d.get("ended_at") or "", "organization": d.get("organization", ""),
        "project": d.get("project", ""), "stack": d.get("stack", ""), "environment": d.get("environment", ""),
        "change_class": d.get("change_class") or "", "outcome": d.get("outcome") or "",
        "actor": actor.get("id") or payload_actor(d) or "", "actor_verified": _bool(actor.get("verified")),
        "ci_run_url": (d.get("ci") or {}).get("run_url") or "", "git_commit": artifact.get("git_commit") or "",
        "source_digest": artifact.get("source_digest") or "",
        "policy_pack": f"{pack.get('name')}@{pack.get('version')}" if pack else "",
        "change_request": d.get("change_request") or "",
        "approvals_verified": ";".join(a["ref_id"] for a in d.get("approvals") or [] if a.get("verified")),
        "break_glass": bg.get("ref_id", "") if bg else "",
        "exceptions": ";".join(e["ref_id"] for e in d.get("exceptions") or []),
        "violations": str(len(results)),
        "mandatory_violations": str(sum(1 for r in results if r.get("level") == "mandatory" and not r.get("waived_by"))),
        "resources": str(len(d.get("resources") or [])),
        "missing_required_fields": ";".join(missing_fields(d)) if is_production_update(d) else "",
        "chain_key": d.get("chain_key") or "", "sequence": str(d.get("sequence") or ""),
        "prev_hash": d.get("prev_hash") or "", "hash": d.get("hash") or "",
        "record_json": json.dumps(d, sort_keys=True, separators=(",", ":")),
        "envelope_json": json.dumps(rec.envelope, sort_keys=True, separators=(",", ":")),
    }


def payload_actor(d: Mapping[str, Any]) -> str | None:
    p = d.get("payload") or {}
    for key in ("approver", "operator", "closed_by", "reviewer"):
        if isinstance(p.get(key), Mapping):
            return p[key].get("id")
    return None


def _bool(v: Any) -> str:
    return "true" if v else "false"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_LOSSLESS = ("record_json", "envelope_json")


def spreadsheet_safe(value: str) -> str:
    """A flat CSV cell a spreadsheet shows as text: a leading ``=``, ``+``, ``-``, ``@``, tab or line break (what
    starts a formula, e.g. ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` in a user name or ticket) gets a ``'``
    in front (OWASP "CSV injection"). The lossless ``record_json``/``envelope_json`` columns stay exact."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_csv(records: Iterable[StoredRecord], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for rec in records:
        row = csv_row(rec)
        writer.writerow({k: v if k in _LOSSLESS else spreadsheet_safe(v) for k, v in row.items()})
        n += 1
    return n


def read_csv(text: IO[str] | str) -> list[StoredRecord]:
    """The records back from a CSV export (from its lossless ``record_json`` / ``envelope_json`` columns)."""
    reader = csv.DictReader(io.StringIO(text) if isinstance(text, str) else text)
    out = []
    for i, row in enumerate(reader, 2):
        try:
            out.append(StoredRecord(document=json.loads(row["record_json"]), envelope=json.loads(row["envelope_json"])))
        except (KeyError, TypeError, ValueError, RecursionError):
            raise InputError(f"CSV row {i} has no valid record_json/envelope_json") from None
    return out


# --- OSCAL assessment results -------------------------------------------------------------------------------------

# The change-control objectives the records evidence, as NIST SP 800-53 rev5 statement IDs (the catalogue OSCAL
# tools ship with; SOC 2 CC8.1 maps onto CM-3). Each finding is satisfied when every record in scope passes `test`.
_OBJECTIVES = (
    ("cm-3_smt", "Configuration change control: every production update has a complete, signed change record",
     "Production updates whose record lacks a required field (see docs/auditor-guide.md, 'Required fields')."),
    ("cm-3.2_smt", "Test, validate and document changes: production updates ran the policy gates without an "
                   "unwaived mandatory violation",
     "Production updates with an unwaived mandatory policy violation."),
    ("cm-5_smt", "Access restrictions for change: production updates were made by a verified identity",
     "Production updates whose deploying identity was not verified."),
)


def _u(*parts: str) -> str:
    return str(uuid.uuid5(_UUID_NS, "/".join(parts)))


def _oscal_time(value: str | datetime | None) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if not value:
        return "1970-01-01T00:00:00Z"
    return value  # stored timestamps are fixed-width UTC ISO 8601 with a Z


def _prop(name: str, value: Any) -> dict[str, str]:
    return {"name": name, "ns": OSCAL_NS, "value": str(value) if value not in (None, "") else "none"}


def _failing(objective: str, d: Mapping[str, Any]) -> bool:
    if objective == "cm-3_smt":
        return bool(missing_fields(d))
    if objective == "cm-3.2_smt":
        return any(r.get("level") == "mandatory" and not r.get("waived_by") for r in d.get("policy_results") or [])
    return not (d.get("actor") or {}).get("verified")


def to_oscal(records: Sequence[StoredRecord], *, since: datetime | None = None, until: datetime | None = None,
             title: str = "ps019 deployment evidence", generated_at: datetime | None = None,
             chain_verified: bool | None = None) -> dict[str, Any]:
    """An OSCAL assessment-results document for ``records`` (the records of one export)."""
    docs = [r.document for r in records]
    ids = sorted(d["record_id"] for d in docs)
    scope = f"{_oscal_time(since) if since else 'start'}..{_oscal_time(until) if until else 'end'}"
    doc_uuid = _u("ar", scope, *ids)
    times = sorted(d.get("started_at") for d in docs if d.get("started_at"))
    start = _oscal_time(since) if since else (times[0] if times else _oscal_time(generated_at))
    end = _oscal_time(until) if until else (times[-1] if times else None)
    generated = _oscal_time(generated_at or datetime.now(timezone.utc))

    observations = []
    for d in docs:
        obs = {
            "uuid": _u("obs", d["record_id"], d.get("hash") or ""),
            "title": f"{d.get('kind')} {d.get('organization')}/{d.get('project')}/{d.get('stack')}",
            "description": _describe(d),
            "props": [_prop("record-id", d["record_id"]), _prop("kind", d.get("kind")),
                      _prop("environment", d.get("environment")), _prop("change-class", d.get("change_class")),
                      _prop("outcome", d.get("outcome")), _prop("actor", (d.get("actor") or {}).get("id")),
                      _prop("git-commit", (d.get("artifact") or {}).get("git_commit")),
                      _prop("chain", f"{d.get('chain_key')}#{d.get('sequence')}")],
            "methods": ["TEST"],
            "types": ["control-objective"],
            "collected": _oscal_time(d.get("started_at")),
            "relevant-evidence": [{"href": f"evidence:sha256:{d.get('hash')}",
                                   "description": "ps019 evidence record (DSSE-signed, hash-chained)"}],
        }
        observations.append(obs)

    prod_updates = [d for d in docs if is_production_update(d)]
    findings = []
    for objective, title_text, failing_desc in _OBJECTIVES:
        failing = [d for d in prod_updates if _failing(objective, d)]
        related = failing or prod_updates
        finding = {
            "uuid": _u("finding", doc_uuid, objective),
            "title": title_text,
            "description": (f"{len(prod_updates) - len(failing)} of {len(prod_updates)} production updates in scope "
                            f"satisfy this objective." + (f" {failing_desc}: {len(failing)}." if failing else "")),
            "target": {"type": "statement-id", "target-id": objective,
                       "status": {"state": "not-satisfied" if failing or not prod_updates else "satisfied",
                                  **({"remarks": "no production updates in scope"} if not prod_updates else {})}},
        }
        if related:
            finding["related-observations"] = [
                {"observation-uuid": _u("obs", d["record_id"], d.get("hash") or "")} for d in related]
        findings.append(finding)

    result: dict[str, Any] = {
        "uuid": _u("result", doc_uuid),
        "title": f"ps019 evidence {scope}",
        "description": (f"{len(docs)} evidence records ({len(prod_updates)} production updates). Required fields: "
                        + ", ".join(f.name for f in REQUIRED_FIELDS) + "."),
        "start": start,
        "props": [_prop("records", len(docs)), _prop("production-updates", len(prod_updates)),
                  _prop("chain-verified", "unknown" if chain_verified is None else str(chain_verified).lower())],
        "reviewed-controls": {"control-selections": [{"include-controls": [
            {"control-id": "cm-3"}, {"control-id": "cm-3.2"}, {"control-id": "cm-5"}]}]},
        "findings": findings,
    }
    if end:
        result["end"] = end
    if observations:
        result["observations"] = observations
    return {"assessment-results": {
        "uuid": doc_uuid,
        "metadata": {"title": title, "last-modified": generated, "version": "1", "oscal-version": OSCAL_VERSION,
                     "props": [_prop("generator", "ps019 evidence export")]},
        "import-ap": {"href": "#ps019-continuous-assessment",
                      "remarks": "ps019 assesses every pulumi preview/update continuously; there is no separate "
                                 "assessment plan document."},
        "results": [result],
    }}


def _describe(d: Mapping[str, Any]) -> str:
    results = d.get("policy_results") or []
    text = (f"{d.get('kind')} of {d.get('organization')}/{d.get('project')}/{d.get('stack')} "
            f"({d.get('environment')}) started {d.get('started_at')}, outcome {d.get('outcome') or 'n/a'}, "
            f"{len(d.get('resources') or [])} resources, {len(results)} policy results.")
    if is_production_update(d):
        missing = missing_fields(d)
        text += " Required fields: " + ("complete." if not missing else "missing " + ", ".join(missing) + ".")
    return text


def check_oscal_references(document: Mapping[str, Any]) -> list[str]:
    """Dangling references trestle does not catch: every related-observation must name an observation."""
    problems = []
    for result in document["assessment-results"]["results"]:
        obs = {o["uuid"] for o in result.get("observations") or []}
        for f in result.get("findings") or []:
            for ref in f.get("related-observations") or []:
                if ref["observation-uuid"] not in obs:
                    problems.append(f"finding {f['uuid']} refers to missing observation {ref['observation-uuid']}")
    return problems
