"""The engine's MarshalProperties(KeepUnknowns, KeepSecrets, SkipInternalKeys), value by value."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from ps019.engine import Secret, marshal_properties, unknown
from ps019.engine.values import (ASSET_SIG, OUTPUT_VALUE_SIG, RESOURCE_REF_SIG, SECRET_SIG, SIG_KEY,
                                 UNKNOWN_SENTINELS, decode_wire)
from ps019.errors import InputError
from ps019.model import UNKNOWN


def wire(props, **kw):
    return json_format.MessageToDict(marshal_properties(props, **{"dry_run": True, **kw}))


def test_secrets_numbers_and_internal_keys():
    out = wire({"n": 20, "s": Secret({"k": 1}), "__defaults": [], "nested": {"__keep": 1}})
    assert out == {"n": 20.0, "s": {SIG_KEY: SECRET_SIG, "value": {"k": 1.0}}, "nested": {"__keep": 1.0}}
    assert "__defaults" in wire({"__defaults": []}, skip_internal_keys=False)  # Remediate keeps them


def test_typed_unknowns_only_in_preview():
    out = wire({"a": UNKNOWN, "b": unknown("number"), "c": [unknown("bool")], "d": unknown("object")})
    assert out == {"a": UNKNOWN_SENTINELS["string"], "b": UNKNOWN_SENTINELS["number"],
                   "c": [UNKNOWN_SENTINELS["bool"]], "d": UNKNOWN_SENTINELS["object"]}
    with pytest.raises(InputError, match="c\\[0\\] is unknown"):
        wire({"c": [UNKNOWN]}, dry_run=False)
    assert decode_wire(out)["b"] == unknown("number") and decode_wire(out)["b"].kind == "number"


def test_resource_references_and_output_values_are_flattened():
    ref = {SIG_KEY: RESOURCE_REF_SIG, "urn": "urn:pulumi:s::p::t:m:T::x", "id": "x-1", "packageVersion": ""}
    ref_no_id = {SIG_KEY: RESOURCE_REF_SIG, "urn": "urn:pulumi:s::p::t:m:C::c"}
    out = wire({"r": ref, "c": ref_no_id,
                "o": {SIG_KEY: OUTPUT_VALUE_SIG, "value": "v", "dependencies": []},
                "os": {SIG_KEY: OUTPUT_VALUE_SIG, "value": "v", "secret": True},
                "ou": {SIG_KEY: OUTPUT_VALUE_SIG}})
    assert out == {"r": "x-1", "c": "urn:pulumi:s::p::t:m:C::c", "o": "v",
                   "os": {SIG_KEY: SECRET_SIG, "value": "v"}, "ou": UNKNOWN_SENTINELS["string"]}


def test_assets_keep_their_signature():
    asset = {SIG_KEY: ASSET_SIG, "text": "hello", "hash": "abc"}
    assert wire({"a": asset}) == {"a": asset}


def test_secret_repr_never_shows_plaintext():
    assert "hunter2" not in repr(Secret("hunter2")) + str(Secret("hunter2")) + repr({"a": Secret("hunter2")})
