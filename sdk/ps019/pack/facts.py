"""The edges of a run: everything that reads files, the environment, AWS or the evidence store happens here, once,
before controls run. Controls only ever see the resulting plain ``RunContext``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import structlog

from ps019.controls.base import RunContext
from ps019.model import Diagnostic, ResourceView

log = structlog.get_logger("ps019.pack")


@dataclass
class Facts:
    context: RunContext
    waivers: list = field(default_factory=list)


def gather(run: Any) -> Facts:
    ctx = RunContext(
        organization=run.organization,
        project=run.project,
        stack=run.stack,
        dry_run=run.dry_run,
        stack_config=run.stack_config,
        stack_tags=run.stack_tags,
        now=datetime.now(timezone.utc),
        settings=run.settings,
    )
    return Facts(context=ctx)


def post_process(run: Any, facts: Facts, view: ResourceView, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return diagnostics


def post_process_stack(run: Any, facts: Facts, outputs: tuple, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return diagnostics


def emit_record(run: Any, facts: Facts, kind: str, outputs: Any) -> Any:
    return None


def evidence_diagnostics(run: Any, facts: Facts) -> list[Diagnostic]:
    return []
