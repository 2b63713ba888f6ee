"""The base of every control's config model (``Control.config_model``).

Imported only when a control's parameters are validated or its schema generated, never at the pack's start-up: the
registry skips modules named ``config``.

The rules that keep the engine's validation (the JSON Schema generated from the model, checked by the Pulumi CLI before
``Configure``) and ps019's own (the model) in agreement, tested in tests/test_pack_config_models.py:
- **strict**: no coercion (``"true"`` is not a boolean, ``5`` is not a string), as JSON Schema;
- **unknown top-level keys ignored**: a policy's config schema carries only ``properties`` and ``required`` (the
  Analyzer protocol's ``PolicyConfigSchema``), so the engine accepts keys it does not know, and so does the model
  (``ps019 pack validate-config`` names them); nested objects forbid unknown keys (``additionalProperties: false``);
- **one spelling per key**: fields are named exactly as the config key (no alias), so there is nothing to reconcile;
- **defaults as values** (not factories), so the schema carries them and Pulumi Cloud shows them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

TIERS = ("production", "staging", "development", "unknown")
Tier = Literal["production", "staging", "development", "unknown"]


class ControlConfig(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Nested(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
