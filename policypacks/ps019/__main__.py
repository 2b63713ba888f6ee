"""The ps019 policy pack. All policies come from the ps019 SDK's control registry (see docs/controls.md)."""

from pathlib import Path

from ps019.pack import serve

serve(Path(__file__).resolve().parent)
