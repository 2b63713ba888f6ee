"""RFC 8785 (JCS) canonical JSON and the record hash: the bytes every signature and chain link is computed over.

The lowest layer of ``ps019.evidence``: it imports nothing else from the package, so the record model, signing, the
stores and verification can all depend on it without a cycle.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Mapping

import rfc8785

from ps019.model import is_unknown

_MAX_SAFE_INT = 2**53 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_OR_HIGH = re.compile("[\ud800-\udfff\ue000-\U0010ffff]")


class _NeedsReference(Exception):
    """The value is outside the domain where json.dumps and RFC 8785 agree byte for byte."""


def _jcs_ready(node: Any) -> Any:
    """A copy of ``node`` that ``json.dumps(sort_keys, compact, ensure_ascii=False)`` renders exactly as RFC 8785
    does, or _NeedsReference. Integral doubles become ints (JCS writes 80.0 as 80); other doubles are kept only where
    Python's repr equals ECMAScript's Number.toString (1e-4 <= |x| < 1e16); no lone surrogates; object keys that
    sort the same by code point as by UTF-16 code unit; integers within the IEEE-754 exact range. Mappings, tuples
    and ps019's UNKNOWN are converted as ``ps019.model.redact`` does."""
    t = type(node)
    if t is str:
        if not node.isascii() and _SURROGATE.search(node):
            raise _NeedsReference
        return node
    if t is dict or isinstance(node, Mapping):
        out = {}
        for key, value in node.items():
            if type(key) is not str or (not key.isascii() and _SURROGATE_OR_HIGH.search(key)):
                raise _NeedsReference
            out[key] = _jcs_ready(value)
        return out
    if t is list or t is tuple:
        return [_jcs_ready(v) for v in node]
    if node is None or t is bool:
        return node
    if t is int:
        if -_MAX_SAFE_INT <= node <= _MAX_SAFE_INT:
            return node
        raise _NeedsReference
    if t is float:
        if node.is_integer() and abs(node) <= _MAX_SAFE_INT:
            return int(node)
        if node.is_integer():  # beyond 2**53 ECMAScript prints shortest digits padded with zeros: use the reference
            raise _NeedsReference
        if math.isfinite(node) and 1e-4 <= abs(node) < 1e16:
            return node
        raise _NeedsReference
    if is_unknown(node):
        return "[unknown]"
    raise _NeedsReference


def _fast_dumps(node: Any) -> bytes:
    return json.dumps(node, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical JSON. The ``rfc8785`` package is the reference; values in the domain where
    ``json.dumps`` agrees with it byte for byte (nearly all real records, see :func:`_jcs_ready`) take that C-speed
    path -- a hypothesis test checks the equivalence -- which matters for 1,000-resource records."""
    try:
        return _fast_dumps(_jcs_ready(document))
    except _NeedsReference:
        return rfc8785.dumps(document)


def record_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical record without its own ``hash`` field (signatures live outside the record)."""
    body = {k: v for k, v in document.items() if k != "hash"}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()
