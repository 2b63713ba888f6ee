"""Engine wire format -> ``ps019.model.ResourceView``, once per resource.

pulumi_policy converts the property Struct again for every policy object (MessageToDict, deserialize, proxy:
~120-160 µs per policy per resource). ps019 walks the Struct once, directly, and hands the same plain view to every
control, so adding controls does not multiply the conversion cost.
"""

from __future__ import annotations

from typing import Any

from ps019.digest import wire_inputs_digest
from ps019.model import SECRET_PLACEHOLDER, UNKNOWN, ResourceView, Unknown

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

# The engine's typed unknown sentinels (sdk/go/common/resource/plugin/rpc.go); all become ps019's UNKNOWN.
UNKNOWN_SENTINELS = {
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9": Unknown("string"),
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7": Unknown("bool"),
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421": Unknown("number"),
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2": Unknown("array"),
    "030794c1-ac77-496b-92df-f27374a8bd58": Unknown("asset"),
    "e48ece36-62e2-4504-bad9-02848725956a": Unknown("archive"),
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff": Unknown("object"),
}


def struct_to_plain(struct: Any, drop_internal: bool = True) -> tuple[dict[str, Any], frozenset]:
    """Convert a ``google.protobuf.Struct`` of engine-encoded properties to plain values.

    Returns the property dict and the set of paths whose values were secret (unwrapped here, as pulumi_policy does).
    """
    props, secret_paths, _ = _convert(struct, drop_internal)
    return props, secret_paths


def _convert(struct: Any, drop_internal: bool) -> tuple[dict[str, Any], frozenset, bool]:
    """(props, secret paths, whether the evidence digest can be taken from the wire bytes: no unknown and nothing
    dropped -- secrets are redacted in a copy of the Struct, see :func:`_wire_digest`)."""
    secrets: list[tuple] = []
    out: dict[str, Any] = {}
    verbatim = True
    for key, value in struct.fields.items():
        if drop_internal and key.startswith("__"):
            verbatim = False
            continue
        out[key] = _value(value, (key,), secrets)
    return out, frozenset(secrets), verbatim and not _has_unknown(out)


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def _value(v: Any, path: tuple, secrets: list) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        s = v.string_value
        return UNKNOWN_SENTINELS.get(s, s) if len(s) == 36 else s
    if kind == "number_value":
        return v.number_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        fields = v.struct_value.fields
        if SIG_KEY in fields:
            sig = fields[SIG_KEY].string_value
            if sig == SECRET_SIG:
                secrets.append(path)
                return _value(fields["value"], path, secrets) if "value" in fields else None
            # Assets and archives keep their signature object: controls rarely look inside them.
        return {k: _value(x, path + (k,), secrets) for k, x in fields.items()}
    if kind == "list_value":
        return [_value(x, path + (i,), secrets) for i, x in enumerate(v.list_value.values)]
    return None  # null_value or unset


def _wire_digest(struct: Any, secret_paths: frozenset) -> str:
    """``ps019.digest.inputs_digest`` of the converted bag, computed on the Struct: each secret is replaced by
    ``[secret]`` in a copy, exactly where ``ps019.model.redact`` replaces it in the plain bag."""
    if not secret_paths:
        return wire_inputs_digest(struct)
    from google.protobuf import struct_pb2

    copy = struct_pb2.Struct()
    copy.CopyFrom(struct)
    replaced: list[tuple] = []
    for path in sorted(secret_paths, key=len):
        if any(path[: len(done)] == done for done in replaced):
            continue  # inside a secret already replaced as a whole
        replaced.append(path)
        node: Any = copy
        for key in path[:-1]:
            value = node.fields[key] if isinstance(key, str) else node.values[key]
            node = value.struct_value if value.WhichOneof("kind") == "struct_value" else value.list_value
        leaf = node.fields[path[-1]] if isinstance(path[-1], str) else node.values[path[-1]]
        leaf.string_value = SECRET_PLACEHOLDER
    return wire_inputs_digest(copy)


def provider_view(request: Any) -> ResourceView | None:
    if not request.HasField("provider"):
        return None
    prov = request.provider
    props, secret_paths = struct_to_plain(prov.properties)
    return ResourceView(urn=prov.urn, type=prov.type, name=prov.name, props=props, secret_paths=secret_paths)


def request_view(request: Any) -> ResourceView:
    """An ``AnalyzeRequest`` (inputs) or ``AnalyzerResource`` (outputs, from AnalyzeStack) as a ResourceView."""
    props, secret_paths, verbatim = _convert(request.properties, True)
    parent = getattr(request, "parent", "") or request.options.parent or None
    deps = tuple(getattr(request, "dependencies", ()) or ())
    return ResourceView(
        urn=request.urn,
        type=request.type,
        name=request.name,
        props=props,
        secret_paths=secret_paths,
        provider=provider_view(request),
        parent=parent,
        dependencies=deps,
        inputs_digest=_wire_digest(request.properties, secret_paths) if verbatim else None,
    )


def is_unknown_value(value: Any) -> bool:
    return isinstance(value, Unknown)
