"""Settings for the deploy-identity edge: which roles may deploy each tier, whether to ask AWS who we are, and how
long to wait for it.

The integrator composes :class:`IdentitySettings` into the pack settings (``Settings.identity``); the identity
controls read ``allowed_deploy_roles`` from there unless a control's own ``--policy-pack-config`` parameter
``allowedDeployRoles`` overrides it.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ps019.iam.arns import role_arn_matches  # noqa: F401 - re-exported for callers of the settings

# Environment variables that say the process was handed AWS credentials (or a way to get them) explicitly.
_AWS_CREDENTIAL_HINTS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$")


def _endpoint_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise ValueError("an endpoint URL carries no user, password, query or fragment")
    return value.rstrip("/")


class AwsEndpoints(BaseModel):
    """Where the identity lookup sends its AWS calls. Only this (the platform team's pack config) decides it:
    ``AWS_ENDPOINT_URL*``, ``endpoint_url`` / ``services`` in shared config files, ``AWS_DATA_PATH`` endpoint rule
    sets, proxies and ``AWS_CA_BUNDLE`` are ignored, because whoever runs ``pulumi up`` can set them and answer
    ``GetCallerIdentity`` with any ARN they like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sts: str | None = Field(None, description="STS endpoint URL; default: AWS's own STS endpoint for the region")
    iam: str | None = Field(None, description="IAM endpoint URL; default: AWS's own IAM endpoint")

    @field_validator("sts", "iam")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _endpoint_url(value)


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
    endpoints: AwsEndpoints = Field(
        default_factory=AwsEndpoints,
        description="the only endpoints the lookup uses (tests: a local moto server); environment and config-file "
                    "endpoint overrides are ignored and named in the evidence record")
    ca_bundle: str | None = Field(
        None, description="CA bundle file for TLS to the endpoints (default: the bundled certifi roots; "
                          "AWS_CA_BUNDLE is ignored)")

    @field_validator("region")
    @classmethod
    def _region_name(cls, value: str | None) -> str | None:
        if value is not None and not REGION_NAME.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (e.g. us-east-1)")
        return value

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

