"""Shared by the deploy-identity controls: where the allowed deploy-role patterns come from, and which tiers apply."""

from __future__ import annotations

import json
from typing import Any, Mapping

from ps019.controls.base import RunContext


def applies(ctx: RunContext, params: Mapping[str, Any]) -> bool:
    return ctx.tier in (params.get("tiers") or ())


def allowed_patterns(ctx: RunContext, params: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Patterns for the run's tier: the control parameter ``allowedDeployRoles`` wins over the pack-wide
    ``ps019-settings.identity.allowed_deploy_roles``; None means no restriction is configured for this tier."""
    configured = params.get("allowedDeployRoles")
    if isinstance(configured, Mapping) and configured:
        patterns = configured.get(ctx.tier)
        if patterns is None and ctx.tier == "unknown":
            patterns = configured.get("production")  # an unclassified stack gets production's rules (as the gate)
        if patterns is None:
            return None
        return (patterns,) if isinstance(patterns, str) else tuple(str(p) for p in patterns)
    settings = identity_settings(ctx)
    return settings.patterns_for(ctx.tier) if settings is not None else None


def identity_settings(ctx: RunContext) -> Any:
    settings = ctx.settings
    if settings is None:
        return None
    section = getattr(settings, "section", None)
    if callable(section):
        try:
            return section("identity")
        except Exception:  # noqa: BLE001 - an invalid section is reported by the pack's settings control
            return None
    return getattr(settings, "identity", None)


def decoded(value: Any) -> Any:
    """Provider inputs carry objects and lists as JSON text; accept both."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def deploy_identity(ctx: RunContext) -> Any:
    """``ctx.deploy_identity`` as a ``DeployIdentity`` (the edge may also hand over its evidence mapping)."""
    identity = ctx.deploy_identity
    if isinstance(identity, Mapping):
        from ps019.iam.deploy_identity import DeployIdentity

        return DeployIdentity.from_mapping(identity)
    return identity
