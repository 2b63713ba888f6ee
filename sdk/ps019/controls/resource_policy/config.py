"""Config model of the resource-policy controls (``Control.config_model``; see ps019.controls.config)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from ps019.controls.config import ControlConfig

AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]


class ResourcePolicyConfig(ControlConfig):
    """Accounts the organisation owns."""

    trustedAccountIds: list[AccountId] = Field(  # noqa: N815 - the config key
        [], description="AWS account IDs your organisation owns: writes granted to them are not reported as "
                        "cross-account. The deploying account is trusted when ps019 could look it up.")
