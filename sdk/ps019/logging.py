"""structlog configuration: human output on a terminal, JSON lines otherwise. Configuration lives here, apart
from the code that logs. The pack process never logs to stdout (the engine reads the port from it)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO


_SECRET_HINTS = ("secret", "password", "token", "private_key", "credential", "access_key")


class LazyLogger:
    """``structlog.get_logger(name)``, imported on first use: the pack's start-up (spawn until the port is printed)
    must not pay for structlog, and the pack only learns where its log goes at Configure."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, method)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)


def drop_secret_fields(_logger: Any, _name: str, event: dict) -> dict:
    """Never let a field whose name says it is secret reach a log line."""
    for key in list(event):
        if any(h in key.lower() for h in _SECRET_HINTS):
            event[key] = "[secret]"
    return event


def configure(stream: TextIO | None = None, json_lines: bool | None = None, level: str = "info") -> None:
    import structlog

    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    renderer = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_secret_fields,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


class CurrentStderr:
    """Whatever ``sys.stderr`` is at the moment of writing (not the object it was when logging was configured), so
    that a caller who swaps stderr -- a test harness, an embedding program -- never leaves logging on a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_cli(default_level: str = "warning") -> None:
    """CLI commands: logs to stderr (stdout carries the command's output), level from ``PS019_LOG_LEVEL``."""
    configure(stream=CurrentStderr(), level=os.environ.get("PS019_LOG_LEVEL", default_level))  # type: ignore[arg-type]


_pack_log_target: tuple | None = None


def configure_pack_logging(settings: Any) -> None:
    """The pack's decision log goes where the pack config (``ps019-settings.log.file``) or ``PS019_LOG_FILE`` says;
    by default to stderr, which the engine shows as diagnostics — never stdout. Called at every Configure; it only
    reconfigures when the destination changed."""
    global _pack_log_target
    target = (getattr(settings, "log", {}) or {}).get("file") or os.environ.get("PS019_LOG_FILE")
    level = (getattr(settings, "log", {}) or {}).get("level") or os.environ.get("PS019_LOG_LEVEL", "warning")
    if _pack_log_target == (target, level):
        return
    _pack_log_target = (target, level)
    if target:
        try:
            stream = open(target, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the pack
            configure(stream=stream, json_lines=True, level=level)
            return
        except OSError:
            pass
    configure(stream=sys.stderr, json_lines=True, level=level)
