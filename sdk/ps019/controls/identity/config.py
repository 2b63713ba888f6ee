"""Config models of the deploy-identity controls (``Control.config_model``; see ps019.controls.config)."""

from __future__ import annotations

from pydantic import Field

from ps019.controls.config import ControlConfig, Tier

_TIERS_DESCRIPTION = "Environment tiers this control applies to."
_ROLES_DESCRIPTION = ("Tier -> glob patterns of role ARNs allowed to deploy it (overrides "
                      "ps019-settings.identity.allowed_deploy_roles; an unknown tier gets production's patterns).")


class ProductionTiers(ControlConfig):
    """The control applies to production and to stacks no pattern classifies (production rules, as the gate)."""

    tiers: list[Tier] = Field(["production", "unknown"], description=_TIERS_DESCRIPTION)


class AllowedDeployRoles(ControlConfig):
    """Deploy-role patterns per tier for the provider's assumed role."""

    allowedDeployRoles: dict[str, list[str]] = Field({}, description=_ROLES_DESCRIPTION)  # noqa: N815 - the config key


class DeployCaller(ProductionTiers, AllowedDeployRoles):
    """Which tiers are checked, and the deploy-role patterns per tier."""
