"""Errors a user can act on. The CLI prints ``str(error)`` on one line and exits with ``exit_code``; nothing here
should ever surface as a traceback."""

import re

# C0 and C1 control characters, DEL, and the bidirectional overrides/isolates ("Trojan Source"): text from a record
# (a user name, a ticket, a document key the store's writer added) must never move the cursor, clear the screen, set
# the window title or reorder what the auditor reads.
_UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_OR_NEWLINE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, *, newlines: bool = False) -> str:
    """``text`` for a terminal: every control or bidi character shown as a ``\\uXXXX`` escape (newlines too,
    unless ``newlines``), so what a record holds is displayed, never executed by the terminal."""
    pattern = _UNPRINTABLE if newlines else _UNPRINTABLE_OR_NEWLINE
    return pattern.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


class Ps019Error(Exception):
    """Unusable input or environment (exit status 2)."""

    exit_code = 2


class InputError(Ps019Error):
    """A file, flag or document the user supplied cannot be used."""


class PackError(Ps019Error):
    """The policy pack process could not be started, crashed, or did not answer in time."""


class StoreError(Ps019Error):
    """The evidence store is unreachable or refused the operation."""


class IntegrityError(Ps019Error):
    """A signature, hash chain or sequence check failed (exit status 1: the check ran and found a problem)."""

    exit_code = 1


def validation_problems(exc: "object", prefix: str = "") -> list[str]:
    """A pydantic ``ValidationError`` as one ``where: what`` line per problem (``approvals[1].signature: field
    required``), with pydantic's own "Value error, " prefix dropped. One renderer for every model ps019 validates."""
    lines = []
    for err in exc.errors(include_url=False):  # type: ignore[attr-defined]
        parts = [p for p in err.get("loc", ()) if p not in ("function-after", "function-before")]
        where = ""
        for part in parts:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        if prefix:
            where = f"{prefix}.{where}" if where else prefix
        msg = str(err.get("msg", "invalid"))
        msg = msg[:1].lower() + msg[1:]
        if msg.startswith("value error, "):
            msg = msg[len("value error, "):]
        lines.append(f"{where}: {msg}" if where else msg)
    return lines
