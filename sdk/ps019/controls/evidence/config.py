"""Config model of the promotion control (``Control.config_model``; see ps019.controls.config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ps019.controls.config import ControlConfig


class PromotionConfig(ControlConfig):
    """Which tiers must be reached by promotion, and how the artifact is matched."""

    gated_tiers: list[str] = Field(["production"], description="Tiers whose updates must have been promoted.")
    required_tier: str | None = Field(
        None, description="The artifact must have reached exactly this tier (e.g. staging); null = any lower tier.")
    match_on: Literal["source_digest", "git_commit", "either"] = Field(
        "either", description="How the artifact is matched: the program's source digest, the git commit, or either "
                              "(the source digest when the run has one, else the commit).")
    check_previews: bool = Field(True, description="Also report during preview.")
