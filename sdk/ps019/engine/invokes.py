"""Answers to provider function calls (invokes) that a program makes, offline.

Three kinds of answer, in this order:

1. **Supplied**: ``--invoke-results FILE`` (:func:`load_invoke_results`) holds real answers keyed by token and
   arguments; the first entry whose ``args`` all equal the call's arguments wins.
2. **Exact**: pure functions the provider computes without calling AWS, reproduced here
   (``aws.iam.getPolicyDocument``; :func:`policy_document`), and lookups answered from pinned data
   (``aws.iam.getPolicy`` of an AWS managed policy, from :mod:`ps019.iam`'s dataset).
3. **Placeholder**: anything else gets a deterministic, type-correct result built from the SDK's declared result type
   (``ps019.engine.capture_worker``); it is reported as an offline placeholder.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

from ps019.engine import placeholders
from ps019.errors import InputError

POLICY_DOCUMENT_TOKEN = "aws:iam/getPolicyDocument:getPolicyDocument"
GET_POLICY_TOKEN = "aws:iam/getPolicy:getPolicy"


# ----------------------------------------------------------------------------------------------------------------
# aws.iam.getPolicyDocument, as terraform-provider-aws computes it (internal/service/iam/policy_document_data_source.go
# and policy_model.go): statements in order; a one-element set becomes a string, a longer one a reverse-sorted list;
# principals of one type are merged; {"*": ["*"]} becomes "*"; condition values keep their order; source documents are
# merged first (duplicate Sids are an error), then this document (same Sid replaces), then overrides; the JSON is
# Go's json.MarshalIndent (two spaces, map keys sorted, "<", ">" and "&" escaped).


class PolicyDocumentError(ValueError):
    """The arguments the provider would reject (duplicate Sids, a source document that is not JSON)."""


def _string_list(values: Any) -> Any:
    items = sorted({str(v) for v in (values or [])}, reverse=True)  # a TypeSet: duplicates collapse
    return items[0] if len(items) == 1 else items


def _replace_vars(value: Any, version: str) -> Any:
    def one(text: str) -> str:
        if version == "2008-10-17" and "&{" in text:
            raise PolicyDocumentError(f"found &{{ sequence in ({text}), which is not supported in document version "
                                      f"2008-10-17")
        return text.replace("&{", "${")

    return one(value) if isinstance(value, str) else [one(v) for v in value]


def _principals(blocks: Any, version: str) -> list[tuple[str, Any]]:
    return [(str(b.get("type", "")), _replace_vars(_string_list(b.get("identifiers")), version))
            for b in blocks or []]


def _principal_json(principals: list[tuple[str, Any]]) -> Any:
    if len(principals) == 1 and principals[0][0] == "*" and principals[0][1] in ("*", ["*"]):
        return "*"
    raw: dict[str, Any] = {}
    for kind, ids in principals:
        current = raw.get(kind)
        if isinstance(ids, list):
            merged = [] if current is None else ([current] if isinstance(current, str) else list(current))
            raw[kind] = merged + sorted(ids, reverse=True)
        else:
            if current is None:
                raw[kind] = ids
            elif isinstance(current, str):
                raw[kind] = [current, ids]
            else:
                raw[kind] = list(current) + [ids]
    return {k: raw[k] for k in sorted(raw)}


def _conditions_json(conditions: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    raw: dict[str, dict[str, list[str]]] = {}
    for test, variable, values in conditions:
        raw.setdefault(test, {}).setdefault(variable, []).extend(values)
    return {t: {v: (vals[0] if len(vals) == 1 else vals) for v, vals in sorted(raw[t].items())} for t in sorted(raw)}


def _statement(block: Mapping[str, Any], version: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if block.get("sid"):
        out["Sid"] = str(block["sid"])
    out["Effect"] = str(block.get("effect") or "Allow")
    for key, field in (("actions", "Action"), ("notActions", "NotAction")):
        if block.get(key):
            out[field] = _string_list(block[key])
    for key, field in (("resources", "Resource"), ("notResources", "NotResource")):
        if block.get(key):
            out[field] = _replace_vars(_string_list(block[key]), version)
    for key, field in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
        if block.get(key):
            out[field] = _principal_json(_principals(block[key], version))
    if block.get("conditions"):
        conditions = []
        for c in block["conditions"]:
            values = [str(v) for v in (c.get("values") or [])]
            conditions.append((str(c.get("test", "")), str(c.get("variable", "")), _replace_vars(values, version)))
        out["Condition"] = _conditions_json(conditions)
    return out


def _parse_document(text: Any, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise PolicyDocumentError(f"{what} is not a JSON policy document")
    statements = doc.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return {"Version": doc.get("Version", ""), "Id": doc.get("Id", ""), "Statement": list(statements)}


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    if new.get("Id"):
        into["Id"] = new["Id"]
    if str(new.get("Version") or "") > str(into.get("Version") or ""):
        into["Version"] = new["Version"]
    for statement in new.get("Statement") or []:
        sid = statement.get("Sid") if isinstance(statement, dict) else None
        if not sid:
            into["Statement"].append(statement)
            continue
        for i, existing in enumerate(into["Statement"]):
            if isinstance(existing, dict) and existing.get("Sid") == sid:
                into["Statement"][i] = statement
                break
        else:
            into["Statement"].append(statement)


def _go_json(value: Any, *, indent: bool) -> str:
    text = json.dumps(value, indent=2 if indent else None, separators=(",", ": ") if indent else (",", ":"),
                      ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def policy_document(args: Mapping[str, Any]) -> dict[str, Any]:
    """The result of ``aws.iam.getPolicyDocument(args)`` (camelCase keys, as on the wire): ``json``,
    ``minifiedJson`` and ``id`` computed as the provider does, plus the arguments echoed back."""
    version = str(args.get("version") or "2012-10-17")
    merged: dict[str, Any] = {"Version": "", "Id": "", "Statement": []}
    seen_sids: set[str] = set()
    for i, source in enumerate(args.get("sourcePolicyDocuments") or []):
        doc = _parse_document(source, f"source_policy_documents[{i}]")
        for j, statement in enumerate(doc["Statement"]):
            sid = statement.get("Sid") if isinstance(statement, dict) else None
            if sid:
                if sid in seen_sids:
                    raise PolicyDocumentError(f"duplicate Sid ({sid}) in source_policy_documents (item {i}; statement "
                                              f"{j}). Remove the Sid or ensure Sids are unique")
                seen_sids.add(sid)
        _merge(merged, doc)
    own: dict[str, Any] = {"Version": version, "Id": str(args.get("policyId") or ""), "Statement": []}
    own_sids: set[str] = set()
    for block in args.get("statements") or []:
        sid = str(block.get("sid") or "")
        if sid and sid in own_sids:
            raise PolicyDocumentError(f"duplicate Sid ({sid}). Remove the Sid or ensure the Sid is unique")
        own_sids.add(sid)
        own["Statement"].append(_statement(block, version))
    _merge(merged, own)
    for i, override in enumerate(args.get("overridePolicyDocuments") or []):
        _merge(merged, _parse_document(override, f"override_policy_documents[{i}]"))
    document: dict[str, Any] = {}
    if merged.get("Version"):
        document["Version"] = merged["Version"]
    if merged.get("Id"):
        document["Id"] = merged["Id"]
    if merged["Statement"]:
        document["Statement"] = merged["Statement"]
    text = _go_json(document, indent=True)
    result = {k: v for k, v in args.items() if k in ("overridePolicyDocuments", "policyId", "sourcePolicyDocuments",
                                                      "statements")}
    result.update({"json": text, "minifiedJson": _go_json(document, indent=False), "version": version,
                   "id": str(zlib.crc32(text.encode()))})
    return result


# ----------------------------------------------------------------------------------------------------------------
# aws.iam.getPolicy of an AWS managed policy, from the pinned dataset (ps019.iam.managed).


def managed_policy_lookup(args: Mapping[str, Any]) -> dict[str, Any] | None:
    """``aws.iam.getPolicy`` answered for an AWS managed policy named by ``arn`` or ``name``; None when the dataset
    does not know it (a customer-managed policy: only the account knows it)."""
    from ps019.iam import managed_policy_info

    info = managed_policy_info(args.get("arn") or args.get("name"))
    if info is None:
        return None
    return {"arn": info.arn, "name": info.name, "path": info.path, "policy": info.policy_json,
            "description": "", "id": info.arn, "policyId": "ANPA" + placeholders.digest(info.arn, length=17).upper(),
            "attachmentCount": 0, "tags": {}, "pathPrefix": args.get("pathPrefix") or ""}


# ----------------------------------------------------------------------------------------------------------------
# Fixed answers for the calls nearly every AWS program makes.


def _caller_identity(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    return {"accountId": placeholders.ACCOUNT, "arn": f"arn:aws:iam::{placeholders.ACCOUNT}:user/ps019-offline",
            "userId": "AIDAPS019OFFLINESTANDIN", "id": placeholders.ACCOUNT}


def _region(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    name = str(args.get("region") or args.get("name") or region)
    return {"name": name, "region": name, "id": name, "description": name, "endpoint": f"ec2.{name}.amazonaws.com"}


def _partition(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}


def _availability_zones(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    return {"names": [f"{region}a", f"{region}b", f"{region}c"],
            "zoneIds": [f"{region[:2]}{region.split('-')[1][:1]}{region[-1]}-az{i}" for i in (1, 2, 3)],
            "id": region, "groupNames": [region], "state": args.get("state") or "available"}


EXACT: dict[str, Callable[[Mapping[str, Any], str], dict[str, Any] | None]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getRegion:getRegion": _region,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    POLICY_DOCUMENT_TOKEN: lambda args, region: policy_document(args),
    GET_POLICY_TOKEN: lambda args, region: managed_policy_lookup(args),
}


# ----------------------------------------------------------------------------------------------------------------
# --invoke-results FILE


def load_invoke_results(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``{"<token>": [{"args": {...}, "result": {...}}, ...]}`` (an entry without ``args`` matches any call; a bare
    ``{"result": ...}`` object stands for a one-entry list). Keys of ``args`` and ``result`` are the wire names
    (camelCase, as in the provider schema)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"invoke results file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"invoke results file {path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise InputError(f"invoke results file {path} must be an object keyed by function token")
    out: dict[str, list[dict[str, Any]]] = {}
    for token, entries in document.items():
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("result"), dict)
                                                    for e in entries):
            raise InputError(f"invoke results file {path}: {token!r} must be a list of "
                             f"{{\"args\": {{...}}, \"result\": {{...}}}} entries")
        if ":" not in token:
            raise InputError(f"invoke results file {path}: {token!r} is not a function token such as "
                             f"aws:ec2/getAmi:getAmi")
        out[token] = entries
    return out


def supplied_result(results: Mapping[str, list[dict[str, Any]]], token: str,
                    args: Mapping[str, Any]) -> dict[str, Any] | None:
    for entry in results.get(token, ()):
        wanted = entry.get("args") or {}
        if all(args.get(k) == v for k, v in wanted.items()):
            return dict(entry["result"])
    return None
