"""The per-policy config the engine sends in ``Configure``: ``ReconcilePolicyPackConfig`` (pulumi
``pkg/resource/analyzer/config.go``): policy defaults from GetAnalyzerInfo, then schema ``default`` values, then the
pack's ``initialConfig``, then the user's ``--policy-pack-config`` JSON; validated against each policy's schema."""

from __future__ import annotations

import json
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
    result: dict[str, PolicyConfig] = {}
    for policy in info.policies:
        props = {}
        for key, schema in json_format.MessageToDict(policy.configSchema.properties).items():
            if isinstance(schema, Mapping) and "default" in schema:
                props[key] = schema["default"]
        result[policy.name] = PolicyConfig(WIRE_TO_LEVEL.get(policy.enforcementLevel, Level.ADVISORY), props)
    _apply(result, initial_config_of(info))
    _apply(result, user)
    _validate(info, result)
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
    try:
        import jsonschema
    except ImportError:  # optional at run time; the engine would reject what this skips
        return
    for policy in info.policies:
        cfg = config.get(policy.name)
        if cfg is None or not policy.HasField("configSchema"):
            continue
        schema = {"type": "object", "properties": json_format.MessageToDict(policy.configSchema.properties),
                  "required": list(policy.configSchema.required)}
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(cfg.properties), key=str)
        if errors:
            raise InputError(f"policy pack config for {policy.name!r} is invalid: {errors[0].message}")


def to_configure_request(config: Mapping[str, PolicyConfig]) -> analyzer_pb2.ConfigureAnalyzerRequest:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, cfg in config.items():
        entry = analyzer_pb2.PolicyConfig(enforcementLevel=LEVEL_TO_WIRE[cfg.level or Level.ADVISORY])
        entry.properties.SetInParent()  # always present: the Node server crashes without it, the engine sends it
        if cfg.properties:
            entry.properties.update(cfg.properties)
        request.policyConfig[name].CopyFrom(entry)
    return request
