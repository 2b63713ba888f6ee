"""Pack-wide settings: the ``ps019-settings`` entry of the policy pack config.

Pulumi's policy config is keyed by policy name, so settings that several controls share (environment tiers, trusted
keys, the evidence store) live under one extra, no-op stack policy called ``ps019-settings``::

    {
      "ps019-settings": {
        "environments": {...},   # ps019.gate.settings.EnvironmentSettings
        "gate": {...},           # ps019.gate.settings.GateSettings
        "breakGlass": {...},     # ps019.gate.breakglass.BreakGlassSettings
        "exceptions": {...},     # ps019.gate.exceptions.ExceptionSettings
        "identity": {...},       # ps019.aws.settings.IdentitySettings
        "evidence": {...},       # ps019.evidence.EvidenceSettings
        "log": {"file": "/var/log/ps019/decisions.jsonl", "level": "info"}
      },
      "PS019-IAM-001": "mandatory"
    }

This file comes from the platform team (``--policy-pack-config``), not from the stack: a developer who controls stack
config must not be able to change who is trusted or where evidence goes. Each section is validated by its own model
when first used; an invalid section is reported as a mandatory violation on the stack, never a crash.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

SETTINGS_POLICY = "ps019-settings"

# section name -> "module:Model"
SECTIONS = {
    "environments": "ps019.gate.settings:EnvironmentSettings",
    "gate": "ps019.gate.settings:GateSettings",
    "breakGlass": "ps019.gate.breakglass:BreakGlassSettings",
    "exceptions": "ps019.gate.exceptions:ExceptionSettings",
    "identity": "ps019.aws.settings:IdentitySettings",
    "evidence": "ps019.evidence:EvidenceSettings",
}


@dataclass
class Settings:
    raw: Mapping[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # control ID -> what is wrong with that control's own config (its config model); filled by the servicer
    policy_errors: dict[str, str] = field(default_factory=dict)
    _parsed: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        """The validated model for a section (defaults when absent); None if the section is invalid (see errors)."""
        if name in self._parsed:
            return self._parsed[name]
        module_name, model_name = SECTIONS[name].split(":")
        model = getattr(importlib.import_module(module_name), model_name)
        import pydantic  # here, not at module level: the pack's start-up must not pay for it

        try:
            value = model.model_validate(self.raw.get(name) or {})
        except pydantic.ValidationError as exc:
            self.errors[name] = format_validation_error(f"{SETTINGS_POLICY}.{name}", exc)
            value = None
        self._parsed[name] = value
        return value

    @property
    def log(self) -> Mapping[str, Any]:
        value = self.raw.get("log") or {}
        return value if isinstance(value, Mapping) else {}

    def validate_all(self) -> dict[str, str]:
        unknown = set(self.raw) - set(SECTIONS) - {"log"}
        for name in sorted(unknown):
            self.errors[name] = f"{SETTINGS_POLICY}: unknown section {name!r} (known: {', '.join(sorted(SECTIONS))}, log)"
        for name in SECTIONS:
            try:
                self.section(name)
            except ImportError:  # an area not installed in this build: nothing to validate against
                continue
        return self.errors


def format_validation_error(prefix: str, exc: Any) -> str:
    from ps019.errors import validation_problems

    return "; ".join(validation_problems(exc, prefix))
