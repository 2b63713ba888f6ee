"""``--format json``: the report dict, keys sorted, two-space indent, UTF-8 (the shape is in docs/output-formats.md)."""

from __future__ import annotations

import json
from typing import Any, Mapping


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
