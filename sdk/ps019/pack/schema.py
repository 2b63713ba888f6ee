"""JSON Schemas for the pack's policy config, generated from the pydantic models.

The engine validates each policy's config against the policy's ``configSchema`` before ``Configure``, and
``pulumi policy validate-config`` uses the same schema (pulumi ``pkg/resource/analyzer/config.go``): gojsonschema over
``{"type": "object", "properties": ..., "required": ...}``. So the schemas here are self-contained (no ``$ref``/
``$defs``: the engine validates against the properties alone), draft-07 compatible, and accept what the models accept:
a field with a camelCase alias is accepted under either spelling (``unknownTreatedAs`` or ``unknown_treated_as``), a
required field under either, and a model that forbids unknown keys says ``additionalProperties: false``.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any, Mapping

_DROP_KEYS = {"title"}


def model_schema(model: Any) -> dict[str, Any]:
    """The self-contained JSON Schema of a pydantic model, accepting field names and aliases alike."""
    by_alias = model.model_json_schema(mode="validation", by_alias=True)
    by_name = model.model_json_schema(mode="validation", by_alias=False)
    defs_alias = by_alias.pop("$defs", {})
    defs_name = by_name.pop("$defs", {})
    return _merge(_inline(by_alias, defs_alias, ()), _inline(by_name, defs_name, ()))


def _inline(node: Any, defs: Mapping[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(x, defs, seen) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"recursive model {name} cannot be inlined into a policy config schema")
        target = dict(defs[name])
        target.update({k: v for k, v in node.items() if k != "$ref"})  # e.g. a description on the field
        return _inline(target, defs, seen + (name,))
    return {k: _inline(v, defs, seen) for k, v in node.items() if k not in _DROP_KEYS}


def _merge(alias: Any, name: Any) -> Any:
    """Walk the by-alias and by-name schemas together (pydantic keeps field order): every object gets both spellings of
    each property, and a required field is satisfied by either."""
    if isinstance(alias, list) and isinstance(name, list) and len(alias) == len(name):
        return [_merge(a, n) for a, n in zip(alias, name)]
    if not (isinstance(alias, dict) and isinstance(name, dict)):
        return alias
    out = {k: _merge(v, name.get(k)) for k, v in alias.items() if k not in ("properties", "required")}
    if "properties" in alias:
        properties: dict[str, Any] = {}
        spelling: dict[str, str] = {}
        for (a_key, a_sub), (n_key, n_sub) in zip(alias["properties"].items(), name["properties"].items()):
            merged = _merge(a_sub, n_sub)
            properties[a_key] = merged
            if n_key != a_key:
                # The same field under its Python name. No default here: the engine fills schema defaults into the
                # config it sends, and one default per field is enough.
                properties[n_key] = {k: v for k, v in copy.deepcopy(merged).items() if k != "default"}
                spelling[a_key] = n_key
        out["properties"] = properties
        required = list(alias.get("required", ()))
        plain = [r for r in required if r not in spelling]
        either = [{"anyOf": [{"required": [r]}, {"required": [spelling[r]]}]} for r in required if r in spelling]
        if plain:
            out["required"] = plain
        if either:
            out["allOf"] = list(out.get("allOf", ())) + either
    return out


# --- ps019-settings ----------------------------------------------------------------------------------------------

LOG_SCHEMA = {
    "type": "object",
    "description": "The pack's decision log: JSON lines to a file (never stdout, which the engine reads).",
    "properties": {
        "file": {"type": "string", "description": "path of the JSON-lines decision log"},
        "level": {"type": "string", "enum": ["debug", "info", "warning", "error"],
                  "description": "lowest level written (default info)"},
    },
    "additionalProperties": False,
}


def settings_section_schemas() -> dict[str, dict[str, Any]]:
    """One schema per ``ps019-settings`` section, from the section's model (``ps019.pack.settings.SECTIONS``)."""
    from ps019.pack.settings import SECTIONS

    out: dict[str, dict[str, Any]] = {}
    for name, target in SECTIONS.items():
        module_name, model_name = target.split(":")
        try:
            model = getattr(importlib.import_module(module_name), model_name)
        except ImportError:  # an area not installed in this build
            continue
        schema = model_schema(model)
        doc = (model.__doc__ or "").strip().split("\n\n")[0]
        schema.setdefault("description", " ".join(doc.split()) or f"ps019-settings.{name}")
        out[name] = schema
    out["log"] = copy.deepcopy(LOG_SCHEMA)
    return out


def control_config_schema(control: Any) -> tuple[dict[str, Any], list[str]]:
    """(properties, required) of a control's config, generated from its ``config_model``; ``({}, [])`` for a control
    without parameters."""
    model = control.config_model_class()
    if model is None:
        return {}, []
    schema = model_schema(model)
    return dict(schema.get("properties", {})), list(schema.get("required", ()))


def control_config_problems(control: Any, properties: Mapping[str, Any]) -> list[str]:
    """ps019's own validation of a control's configured properties (its config model): ``"<id>.<where>: <what>"``
    per problem, never a value; empty when valid."""
    from ps019.controls.base import ConfigInvalid

    try:
        control.params(properties)
    except ConfigInvalid as exc:
        return list(exc.problems)
    return []
