"""Writes the record's JSON Schema to docs/ (``python -m ps019.evidence.schema [PATH]``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ps019.evidence.record import json_schema

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "docs" / "evidence-record.schema.json"


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write(path: Path = DEFAULT_PATH) -> Path:
    path.write_text(render())
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH))
