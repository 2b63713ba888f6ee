"""Settings for the deploy-identity edge: which roles may deploy each tier, whether to ask AWS who we are, and how
long to wait for it.

The integrator composes :class:`IdentitySettings` into the pack settings (``Settings.identity``); the identity
controls read ``allowed_deploy_roles`` from there unless a control's own ``--policy-pack-config`` parameter
``allowedDeployRoles`` overrides it.
"""

from __future__ import annotations

import os
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ps019.aws.arns import role_arn_matches  # noqa: F401 - re-exported for callers of the settings

# Environment variables that say the process was handed AWS credentials (or a way to get them) explicitly.
_AWS_CREDENTIAL_HINTS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class IdentitySettings(BaseModel):
    """How ps019 establishes and judges the identity that runs ``pulumi up``.

    ``lookup``:
      * ``"auto"`` (default): call STS only when the stack looks like an AWS stack (an ``aws:``/``aws-native:`` key in
        the stack config, or AWS credentials in the environment). A non-AWS stack never pays for, or fails on, a lookup.
      * ``"on"``: always call STS (a failure is reported by PS019-IDENTITY-004).
      * ``"off"``: never call AWS; the live-caller controls then have nothing to judge and stay silent.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup: Literal["auto", "on", "off"] = "auto"
    # tier (production | staging | development | unknown) -> glob patterns over role ARNs
    # (``arn:aws:iam::123456789012:role/deploy/pulumi-*``; ``*`` also matches ``/``).
    allowed_deploy_roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    region: str | None = None  # STS/IAM region; default: AWS_REGION / AWS_DEFAULT_REGION / us-east-1
    connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    read_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # Total attempts per call (1 = no retry). Short, so that a dead endpoint costs seconds, not minutes.
    max_attempts: int = Field(default=2, ge=1, le=5)
    fetch_role_policies: bool = True

    @field_validator("allowed_deploy_roles", mode="before")
    @classmethod
    def _patterns_as_tuples(cls, value: object) -> object:
        if isinstance(value, Mapping):
            out = {}
            for tier, patterns in value.items():
                if isinstance(patterns, str):
                    patterns = [patterns]
                out[str(tier)] = tuple(patterns)
            return out
        return value

    def patterns_for(self, tier: str) -> tuple[str, ...] | None:
        """The allowed deploy-role patterns for ``tier``, or None when none are configured for it. A stack whose tier
        is ``unknown`` gets production's patterns unless ``unknown`` has its own (the gate's rule: unknown is treated
        as production)."""
        patterns = self.allowed_deploy_roles.get(tier)
        if patterns is None and tier == "unknown":
            patterns = self.allowed_deploy_roles.get("production")
        return patterns

    def should_lookup(self, stack_config: Mapping[str, str] | None = None,
                      environ: Mapping[str, str] | None = None) -> bool:
        if self.lookup == "on":
            return True
        if self.lookup == "off":
            return False
        config = stack_config or {}
        if any(key.startswith(("aws:", "aws-native:")) for key in config):
            return True
        env = os.environ if environ is None else environ
        return any(env.get(name) for name in _AWS_CREDENTIAL_HINTS)

