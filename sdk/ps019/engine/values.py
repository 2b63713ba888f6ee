"""Engine-side property values and their wire encoding.

The engine marshals property maps to the analyzer as a ``google.protobuf.Struct`` with ``MarshalProperties``
(``KeepUnknowns``, ``KeepSecrets``, ``SkipInternalKeys``; pulumi ``pkg/resource/plugin/rpc.go``). This module holds
the Python side of that: a :class:`Secret` wrapper for engine values, typed unknowns (``ps019.model.UNKNOWN`` and
:func:`unknown`), :func:`decode_wire` (wire/state JSON -> these values) and :func:`marshal_properties`
(these values -> Struct).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from google.protobuf import struct_pb2

from ps019.errors import InputError
from ps019.model import UNKNOWN, Unknown, is_unknown

# Signatures from pulumi sdk/go/common/resource/sig/sig.go.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
BYTES_SIG = "803fd3297a5875dc03ca845dda5d2a98"

# The engine's typed unknown sentinels (plugin.Unknown*Value). Only sent while dry_run is true.
UNKNOWN_SENTINELS = {
    "string": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    "bool": "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "number": "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "array": "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "asset": "030794c1-ac77-496b-92df-f27374a8bd58",
    "archive": "e48ece36-62e2-4504-bad9-02848725956a",
    "object": "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
}
_KIND_BY_SENTINEL = {v: k for k, v in UNKNOWN_SENTINELS.items()}

SECRET_TEXT = "[secret]"


@dataclass(frozen=True)
class Secret:
    """A secret engine-side value. Its repr never shows the plaintext, so it is safe in logs and tracebacks."""

    value: Any

    def __repr__(self) -> str:
        return "Secret([secret])"

    __str__ = __repr__


def unknown(kind: str = "string") -> Unknown:
    """A value unknown during preview, of the given kind (one of :data:`UNKNOWN_SENTINELS`)."""
    if kind not in UNKNOWN_SENTINELS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(UNKNOWN_SENTINELS)}")
    return UNKNOWN if kind == "string" else Unknown(kind)


def decode_wire(value: Any) -> Any:
    """Turn a JSON value in the engine's wire/state encoding into engine-side values: secret objects become
    :class:`Secret`, unknown sentinels become typed unknowns. Resource references, output values and assets are kept
    as their signed objects (:func:`marshal_properties` flattens what the engine flattens)."""
    if isinstance(value, str):
        kind = _KIND_BY_SENTINEL.get(value)
        return value if kind is None else unknown(kind)
    if isinstance(value, list):
        return [decode_wire(v) for v in value]
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG and "value" in value:
            return Secret(decode_wire(value["value"]))
        if sig in (ASSET_SIG, ARCHIVE_SIG):
            return value
        return {k: decode_wire(v) for k, v in value.items()}
    return value


def to_wire(value: Any, *, dry_run: bool, path: str = "") -> Any:
    """One value in the engine's analyzer encoding (plain JSON, ready for a Struct). Raises :class:`InputError`
    for an unknown outside preview, as the engine never has unknowns in an update."""
    if isinstance(value, Secret):
        return {SIG_KEY: SECRET_SIG, "value": to_wire(value.value, dry_run=dry_run, path=path)}
    if is_unknown(value):
        if not dry_run:
            raise InputError(f"property {path or '<root>'} is unknown, which can only happen in a preview")
        return UNKNOWN_SENTINELS.get(value.kind, UNKNOWN_SENTINELS["string"])
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)  # protobuf Struct numbers are doubles; policies see 20.0
    if isinstance(value, (list, tuple)):
        return [to_wire(v, dry_run=dry_run, path=f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        sig = value.get(SIG_KEY)
        if sig == RESOURCE_REF_SIG:
            # MarshalPropertyValue without KeepResources: the ID when there is one, else the URN.
            ref_id = value.get("id")
            if ref_id is not None and ref_id != "":
                return to_wire(decode_wire(ref_id), dry_run=dry_run, path=path)
            return value.get("urn", "")
        if sig == OUTPUT_VALUE_SIG:
            if "value" not in value:
                inner: Any = UNKNOWN
            else:
                inner = decode_wire(value["value"])
            if value.get("secret"):
                inner = Secret(inner)
            return to_wire(inner, dry_run=dry_run, path=path)
        if sig == SECRET_SIG:
            return to_wire(Secret(decode_wire(value.get("value"))), dry_run=dry_run, path=path)
        if sig == BYTES_SIG:
            raise InputError(f"property {path or '<root>'} is a byte string, which the engine cannot send to a policy")
        return {str(k): to_wire(v, dry_run=dry_run, path=f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    raise InputError(f"property {path or '<root>'} has a value of type {type(value).__name__} that has no wire form")


def marshal_properties(props: Mapping[str, Any] | None, *, dry_run: bool, skip_internal_keys: bool = True
                       ) -> struct_pb2.Struct:
    """The engine's ``MarshalProperties(KeepUnknowns, KeepSecrets, SkipInternalKeys)`` into a Struct.

    Top-level keys starting with ``__`` are dropped when ``skip_internal_keys`` (Analyze/AnalyzeStack) and kept
    otherwise (Remediate)."""
    struct = struct_pb2.Struct()
    if not props:
        return struct
    plain = {}
    for key, value in props.items():
        if skip_internal_keys and key.startswith("__"):
            continue
        plain[key] = to_wire(value, dry_run=dry_run, path=key)
    struct.update(plain)
    return struct


def struct_to_values(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct from the wire (e.g. a remediation's properties) back to engine-side values."""
    from google.protobuf import json_format

    return decode_wire(json_format.MessageToDict(struct))


def iter_secret_texts(value: Any) -> Iterator[str]:
    """Every plaintext string under a :class:`Secret` in ``value`` (used to scrub them from anything we print)."""
    if isinstance(value, Secret):
        yield from _all_texts(value.value)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_secret_texts(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_secret_texts(v)


def _all_texts(value: Any) -> Iterator[str]:
    if isinstance(value, Secret):
        yield from _all_texts(value.value)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _all_texts(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _all_texts(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


class Scrubber:
    """Replaces known secret plaintexts with ``[secret]`` in text we log or return (pack stderr, diagnostics)."""

    MIN_LEN = 4  # shorter strings ("1", "on") would mangle ordinary text and carry little secret

    def __init__(self, texts: Iterator[str] | list[str] = ()) -> None:
        self._texts: set[str] = set()
        self.add(texts)

    def add(self, texts) -> None:
        for t in texts:
            if isinstance(t, str) and len(t) >= self.MIN_LEN and t != SECRET_TEXT:
                self._texts.add(t)

    def __call__(self, text: str) -> str:
        if not self._texts or not text:
            return text
        for secret in sorted(self._texts, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, SECRET_TEXT)
        return text
