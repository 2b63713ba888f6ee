"""Lazy access to the compact action index (``data/iam_index.json.gz``, ~120 kB, ~10 ms to load once).

Nothing is read at import time; the first lookup loads the file, and each service's case-insensitive name map is
built only when that service is first consulted. Wildcard expansions are cached per pattern.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache

_RAW: dict | None = None
_SERVICES: dict[str, "_Service"] = {}


class _Service:
    __slots__ = ("prefix", "actions", "type_tokens")

    def __init__(self, prefix: str, raw: dict) -> None:
        self.prefix = prefix
        # lower-case name -> (canonical "prefix:Name", code)
        self.actions = {name.lower(): (f"{prefix}:{name}", code) for name, code in raw["a"].items()}
        self.type_tokens = tuple(raw.get("t", ()))


def _raw() -> dict:
    global _RAW
    if _RAW is None:
        # No lock: two threads racing here both load the same immutable data; one result wins. (Importing threading
        # and pathlib would cost more at start than the race ever could.)
        import gzip

        with open(os.path.join(os.path.dirname(__file__), "data", "iam_index.json.gz"), "rb") as fh:
            _RAW = json.loads(gzip.decompress(fh.read()))
    return _RAW


def data_version() -> str:
    return _raw()["version"]


def service(prefix: str) -> _Service | None:
    found = _SERVICES.get(prefix)
    if found is None:
        raw = _raw()["services"].get(prefix)
        if raw is None:
            return None
        found = _SERVICES.setdefault(prefix, _Service(prefix, raw))
    return found


def service_prefixes() -> list[str]:
    return list(_raw()["services"])


def lookup(action_lower: str) -> tuple[str, str] | None:
    """``"s3:getobject"`` -> ``("s3:GetObject", "Rt")`` or None when the database does not know it."""
    prefix, _, name = action_lower.partition(":")
    svc = service(prefix)
    return svc.actions.get(name) if svc else None


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


@lru_cache(maxsize=8192)
def glob_regex(pattern: str) -> re.Pattern:
    """IAM wildcards only: ``*`` any run, ``?`` one character; everything else literal. Case-insensitive."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def glob_match(pattern: str, text: str) -> bool:
    if not has_wildcard(pattern):
        return pattern.lower() == text.lower()
    return glob_regex(pattern).fullmatch(text) is not None


@lru_cache(maxsize=4096)
def expand(pattern_lower: str) -> tuple[tuple[str, str, str], ...]:
    """Known actions matching ``service:action`` (either side may hold wildcards), as
    ``(lower name, canonical name, code)``. Never called with an all-wildcard action part: those are whole-service
    grants and are judged without expansion."""
    svc_pat, _, act_pat = pattern_lower.partition(":")
    prefixes = [p for p in service_prefixes() if glob_match(svc_pat, p)] if has_wildcard(svc_pat) else [svc_pat]
    out = []
    for prefix in prefixes:
        svc = service(prefix)
        if svc is None:
            continue
        if has_wildcard(act_pat):
            rx = glob_regex(act_pat)
            out.extend((f"{prefix}:{n}", c, code) for n, (c, code) in svc.actions.items() if rx.fullmatch(n))
        else:
            hit = svc.actions.get(act_pat)
            if hit:
                out.append((f"{prefix}:{act_pat}", hit[0], hit[1]))
    return tuple(out)
