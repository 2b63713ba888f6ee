"""Per-record integrity: does a stored document equal what its DSSE envelope signed, and (with trusted keys) is that
signature good? Used by every store read (``ps019.evidence.store``) and by ``verify`` (``ps019.evidence.chain``).

Depends only on the canonical/signing layer, so the store interface can use it without a cycle.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Mapping

from ps019.evidence.signing import PAYLOAD_TYPE, PREDICATE_TYPE, decode_statement, verify_envelope


def signed_statement(envelope: Any) -> tuple[dict[str, Any] | None, str]:
    """The in-toto statement inside ``envelope`` (not checking its signature), or (None, why not)."""
    try:
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            return None, f"envelope payloadType is {envelope.get('payloadType')!r}"
        payload = base64.b64decode(envelope["payload"], validate=True)
    except (AttributeError, KeyError, TypeError, ValueError, binascii.Error):
        return None, "envelope is malformed"
    stmt = decode_statement(payload)
    if stmt is None:
        return None, "envelope payload is not an in-toto statement"
    return stmt, ""


def edited_fields(document: Mapping[str, Any], predicate: Any) -> list[str]:
    predicate = predicate if isinstance(predicate, Mapping) else {}
    return sorted(k for k in set(predicate) | set(document) if predicate.get(k) != document.get(k))


def document_problem(document: Any, envelope: Any, keys: Mapping[str, Any] | None = None
                     ) -> tuple[str, str, str] | None:
    """(code, field, reason) of the first way ``document`` is not the signed record, or None.

    Without ``keys`` the signature itself is not checked (only that the document is what the envelope's payload
    carries); with ``keys`` an unknown key or a bad signature is a problem too."""
    if not isinstance(document, Mapping):
        return "malformed", "document", "stored document is not a JSON object"
    if keys is not None:
        ok, reason, _ = verify_envelope(envelope if isinstance(envelope, Mapping) else {}, keys)
        if not ok:
            return ("unknown_key" if "unknown key" in reason else "signature"), "signature", reason
    stmt, why = signed_statement(envelope)
    if stmt is None:
        return "signature", "envelope", why
    if stmt.get("predicateType") != PREDICATE_TYPE:
        return "signature", "envelope", "signed payload is not a ps019 change-record statement"
    fields = edited_fields(document, stmt.get("predicate"))
    if fields:
        return "edited", fields[0], f"stored record differs from what was signed: field(s) {', '.join(fields)} edited"
    subject = (stmt.get("subject") or [{}])[0]
    if not isinstance(subject, Mapping) or subject.get("name") != document.get("record_id") \
            or (subject.get("digest") or {}).get("sha256") != document.get("hash"):
        return "edited", "subject", "statement subject does not name this record and hash"
    return None


def short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
