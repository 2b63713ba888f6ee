"""The per-policy config the engine sends in ``Configure``: ``ReconcilePolicyPackConfig`` (pulumi
``pkg/resource/analyzer/config.go``): policy defaults from GetAnalyzerInfo, then schema ``default`` values, then the
pack's ``initialConfig``, then the user's ``--policy-pack-config`` JSON; validated against each policy's schema."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2

from ps019.errors import InputError
from ps019.model import Level

LEVEL_TO_WIRE = {
    Level.ADVISORY: analyzer_pb2.ADVISORY,
    Level.MANDATORY: analyzer_pb2.MANDATORY,
    Level.DISABLED: analyzer_pb2.DISABLED,
    Level.REMEDIATE: analyzer_pb2.REMEDIATE,
}
WIRE_TO_LEVEL = {v: k for k, v in LEVEL_TO_WIRE.items()}


@dataclass
class PolicyConfig:
    level: Level | None  # None: not given (only possible in user config; the wire always carries a level)
    properties: dict[str, Any] = field(default_factory=dict)


def load_policy_pack_config(source: str | Path | Mapping | None) -> dict[str, PolicyConfig]:
    """Parse a ``--policy-pack-config`` document (a path or an already-parsed mapping)."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        document: Any = source
        origin = "policy pack config"
    else:
        origin = f"policy pack config {source}"
        try:
            document = json.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{origin} does not exist") from None
        except OSError as exc:
            raise InputError(f"cannot read {origin}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{origin} is not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(document, Mapping):
        raise InputError(f"{origin} must be a JSON object of policy name -> level or config")
    result: dict[str, PolicyConfig] = {}
    for name, value in document.items():
        if name == "environments":
            continue  # Pulumi ESC environments: needs Pulumi Cloud, not applicable offline
        if isinstance(value, str):
            result[name] = PolicyConfig(_level(value, origin, name))
        elif isinstance(value, Mapping):
            props = {k: v for k, v in value.items() if k != "enforcementLevel"}
            level = _level(value["enforcementLevel"], origin, name) if "enforcementLevel" in value else None
            result[name] = PolicyConfig(level, props)
        else:
            raise InputError(f"{origin}: {name!r} must be a level string or an object")
    return result


def _level(value: Any, origin: str, name: str) -> Level:
    try:
        return Level(value)
    except ValueError:
        raise InputError(f"{origin}: {name!r} has enforcement level {value!r}; expected one of "
                         + ", ".join(level.value for level in Level)) from None


def initial_config_of(info: analyzer_pb2.AnalyzerInfo) -> dict[str, PolicyConfig]:
    # As the engine: an initialConfig entry without a level reads as ADVISORY (proto3 enum default).
    return {name: PolicyConfig(WIRE_TO_LEVEL.get(cfg.enforcementLevel, Level.ADVISORY),
                               json_format.MessageToDict(cfg.properties))
            for name, cfg in info.initialConfig.items()}


def reconcile(info: analyzer_pb2.AnalyzerInfo, user: Mapping[str, PolicyConfig]) -> dict[str, PolicyConfig]:
    """The engine's ``ReconcilePolicyPackConfig``: merged, then validated (:class:`InputError` when invalid)."""
    result = merge_config(info, user)
    _validate(info, result)
    return result


def merge_config(info: analyzer_pb2.AnalyzerInfo, user: Mapping[str, PolicyConfig]) -> dict[str, PolicyConfig]:
    """Policy defaults, schema defaults, the pack's initialConfig, then the user's config, in the engine's order."""
    result: dict[str, PolicyConfig] = {}
    for policy in info.policies:
        props = {}
        for key, schema in json_format.MessageToDict(policy.configSchema.properties).items():
            if isinstance(schema, Mapping) and "default" in schema:
                props[key] = schema["default"]
        result[policy.name] = PolicyConfig(WIRE_TO_LEVEL.get(policy.enforcementLevel, Level.ADVISORY), props)
    _apply(result, initial_config_of(info))
    _apply(result, user)
    return result


def _apply(result: dict[str, PolicyConfig], given: Mapping[str, PolicyConfig]) -> None:
    everything = given.get("all")
    if everything is not None and everything.level is not None:
        for name, cfg in result.items():
            result[name] = PolicyConfig(everything.level, cfg.properties)
    for name, cfg in given.items():
        current = result.get(name)
        level = current.level if current else None
        props = dict(current.properties) if current else {}
        if cfg.level is not None:
            level = cfg.level
        props.update(cfg.properties)
        result[name] = PolicyConfig(level if level is not None else Level.ADVISORY, props)


def _validate(info: analyzer_pb2.AnalyzerInfo, config: Mapping[str, PolicyConfig]) -> None:
    """The engine validates each policy's properties against its JSON schema before Configure."""
    problems = validation_errors(info, config)
    if problems:
        more = f" (and {len(problems) - 1} more; `ps019 pack validate-config` lists them)" if len(problems) > 1 else ""
        raise InputError(f"policy pack config is invalid: {problems[0]}{more}")


def validation_errors(info: analyzer_pb2.AnalyzerInfo, config: Mapping[str, PolicyConfig]) -> list[str]:
    """Every ``"<policy>: <problem>"`` the engine's ``validatePolicyPackConfig`` would report: each policy's
    properties (``{}`` when it has none) against ``{"type": "object", "properties": ..., "required": ...}``."""
    try:
        import jsonschema
    except ImportError:  # optional at run time; the engine would reject what this skips
        return []
    problems: list[str] = []
    for policy in info.policies:
        if not policy.HasField("configSchema"):
            continue
        cfg = config.get(policy.name)
        schema: dict[str, Any] = {"type": "object"}
        properties = json_format.MessageToDict(policy.configSchema.properties)
        if properties:
            schema["properties"] = properties
        if policy.configSchema.required:
            schema["required"] = list(policy.configSchema.required)
        validator = _engine_validator(jsonschema)(schema)
        for error in sorted(validator.iter_errors(cfg.properties if cfg else {}), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{policy.name}: {where + ': ' if where else ''}{_short(error)}")
    return problems


def _engine_validator(jsonschema: Any) -> Any:
    """Draft-07 as the engine's gojsonschema applies it. One difference matters: ``pattern`` is a Go regular
    expression, where ``$`` matches only at the very end of the text; Python's ``$`` also matches before a final newline
    (``"123456789012\n"`` would pass ``^[0-9]{12}$`` here and fail in the engine and in the pack's pydantic model)."""
    def pattern(validator: Any, expected: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and re.search(go_regex(expected), instance) is None:
            yield jsonschema.ValidationError(f"does not match {expected!r}")

    return jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": pattern})


def go_regex(pattern: str) -> str:
    """A Go (RE2) pattern as a Python one with the same meaning for the patterns ps019 declares: an unescaped ``$``
    outside a character class is the end of the text (Python ``\\Z``)."""
    out, escaped, in_class = [], False, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "]":
            in_class = False
            out.append(ch)
        elif ch == "$" and not in_class:
            out.append(r"\Z")
        else:
            out.append(ch)
    return "".join(out)


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<",
           "minLength": "at least this long:", "maxLength": "at most this long:", "minItems": "at least this many items:",
           "maxItems": "at most this many items:"}


def _short(error: Any) -> str:
    """What is wrong, from the schema rule alone: never the value itself (a config value may be a key)."""
    rule, expected = error.validator, error.validator_value
    if rule == "type":
        return f"must be of type {expected if isinstance(expected, str) else ' or '.join(expected)}"
    if rule == "enum":
        return "must be one of " + ", ".join(json.dumps(x) for x in expected)
    if rule in ("required", "additionalProperties"):
        return error.message[:200]  # names keys only
    if rule in ("anyOf", "oneOf") and all(isinstance(x, Mapping) and set(x) == {"required"} for x in expected):
        return "needs " + " or ".join(repr(x["required"][0]) for x in expected)
    if rule in ("anyOf", "oneOf"):
        forms = []
        for branch in expected:
            if isinstance(branch, Mapping) and "enum" in branch:
                forms.append("one of " + ", ".join(json.dumps(x) for x in branch["enum"]))
            elif isinstance(branch, Mapping) and isinstance(branch.get("type"), str):
                forms.append(f"of type {branch['type']}")
            else:
                return "matches no allowed form"
        return "must be " + " or ".join(forms)
    if rule in _BOUNDS:
        return f"must be {_BOUNDS[rule]} {expected}"
    if rule == "pattern":
        return f"must match {expected}"
    return f"breaks the schema's {rule!r} rule"


def to_configure_request(config: Mapping[str, PolicyConfig]) -> analyzer_pb2.ConfigureAnalyzerRequest:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, cfg in config.items():
        entry = analyzer_pb2.PolicyConfig(enforcementLevel=LEVEL_TO_WIRE[cfg.level or Level.ADVISORY])
        entry.properties.SetInParent()  # always present: the Node server crashes without it, the engine sends it
        if cfg.properties:
            entry.properties.update(cfg.properties)
        request.policyConfig[name].CopyFrom(entry)
    return request
