"""Config models of the IAM controls that take parameters (``Control.config_model``; see ps019.controls.config)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ps019.controls.config import ControlConfig


class AdminPolicyAttachmentConfig(ControlConfig):
    """Customer-managed policies to treat as administrator access."""

    extraAdminPolicyArns: list[str] = Field(  # noqa: N815 - the config key
        [], description="Customer-managed policy ARNs (glob patterns) to treat as admin-equivalent.")
    servicePolicyPrincipals: dict[str, Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]] = Field(  # noqa: N815,E501
        {}, description="AWS managed policies designed for a service role that ps019 does not know, by name, with the "
                        "service principals (or EKS service-account subjects system:serviceaccount:<namespace or "
                        "*>:<name>) they are designed for; attached to a role only those can assume, their "
                        "destructive writes and service wildcards are advisory.")


class IamUserConfig(ControlConfig):
    """IAM users that may be created."""

    allowedUserNames: list[str] = Field(  # noqa: N815 - the config key
        [], description="Glob patterns of IAM user names that may be created.")
