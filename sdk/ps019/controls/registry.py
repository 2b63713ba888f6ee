"""The control registry: every module under ``ps019.controls.<area>`` that defines ``CONTROL`` (or ``CONTROLS``).

The pack's policies, the docs' control catalogue and ``ps019 controls`` are all generated from this one list.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

import ps019.controls as _root
from ps019.controls.base import Control

_ID_PATTERN = r"^PS019-[A-Z]+-\d{3}$"


@functools.cache
def all_controls() -> tuple[Control, ...]:
    found: dict[str, Control] = {}
    for info in pkgutil.walk_packages(_root.__path__, prefix="ps019.controls."):
        # config modules hold the controls' pydantic config models, imported on first use (not at start-up)
        if info.name.rsplit(".", 1)[-1] in {"base", "registry", "config"} or ".fixtures" in info.name:
            continue
        module = importlib.import_module(info.name)
        declared = list(getattr(module, "CONTROLS", ())) + ([module.CONTROL] if hasattr(module, "CONTROL") else [])
        for control in declared:
            if control.id in found and found[control.id] is not control:
                raise ValueError(f"duplicate control ID {control.id} in {info.name}")
            found[control.id] = control
    return tuple(sorted(found.values(), key=lambda c: c.id))


def get(control_id: str) -> Control:
    for control in all_controls():
        if control.id == control_id:
            return control
    raise KeyError(control_id)
