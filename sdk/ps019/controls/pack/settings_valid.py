"""PS019-PACK-001: the pack's own settings are valid.

A typo in the trusted-key list or the evidence store URL must not silently weaken the gate, so an invalid
``ps019-settings`` section, or a control's own parameters that break its config model, is a mandatory violation on the
root stack resource (the first resource analyzed).
"""

from __future__ import annotations

from ps019.controls.base import Control, RunContext
from ps019.model import Level, ResourceView, Severity, Violation


def check(resource: ResourceView, ctx: RunContext, params: dict) -> list[Violation]:
    settings = ctx.settings
    if settings is None:
        return []
    found = [Violation(f"{message}. Fix the ps019-settings entry of the policy pack config (--policy-pack-config).")
             for message in settings.validate_all().values()]
    # A control's own parameters that break its config model (an engine that did not validate them): that control
    # reports itself unchecked, and the run fails here.
    found += [Violation(f"{message}. Fix that policy's entry of the policy pack config (--policy-pack-config).")
              for message in (getattr(settings, "policy_errors", None) or {}).values()]
    return found


CONTROL = Control(
    id="PS019-PACK-001",
    title="ps019 pack settings are valid",
    clause="PS-019 §3 Required controls (the control set itself must be configured as intended)",
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale="Controls configured from a broken settings file would run with defaults the platform team did not "
              "choose; failing closed keeps the gate honest.",
    remediation="Correct the named field in the ps019-settings section of the policy pack config file.",
    check=check,
    resource_types=("pulumi:pulumi:Stack",),
)
