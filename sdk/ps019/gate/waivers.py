"""Waivers: how a valid exception or break-glass grant turns a MANDATORY finding into an ADVISORY one.

The pack adapter calls :func:`apply_waivers` on every diagnostic. Only a mandatory diagnostic whose control ID is named
exactly by a waiver, on a resource its URN pattern covers, is downgraded; it keeps its control ID, severity and
resource, gains ``waived_by`` (the exception or grant ID) and a message suffix saying so. Nothing else changes: a
waiver never touches another control, another resource, or an advisory finding.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from ps019.model import Diagnostic, Level


@dataclass(frozen=True)
class Waiver:
    control_id: str  # exact ID, never a pattern
    urn_pattern: str  # fnmatch over URNs ("*" for a grant: it is already bound to its stack)
    reference: str  # EX-… or BG-…
    kind: Literal["exception", "break-glass"]

    def covers(self, diagnostic: Diagnostic) -> bool:
        return diagnostic.control_id == self.control_id and fnmatch.fnmatchcase(diagnostic.urn, self.urn_pattern)

    def suffix(self) -> str:
        if self.kind == "break-glass":
            return f" (overridden under grant {self.reference})"
        return f" (waived by exception {self.reference})"


def apply_waivers(diagnostic: Diagnostic, waivers: Iterable[Waiver]) -> Diagnostic:
    """The diagnostic as the engine should see it. Exceptions are tried before grants: an exception is the narrower,
    pre-approved decision, so it is the one the record should name."""
    if diagnostic.level != Level.MANDATORY or diagnostic.waived_by:
        return diagnostic
    ordered = sorted(waivers, key=lambda w: w.kind != "exception")
    for waiver in ordered:
        if waiver.covers(diagnostic):
            return dataclasses.replace(diagnostic, level=Level.ADVISORY, waived_by=waiver.reference,
                                       message=diagnostic.message + waiver.suffix())
    return diagnostic


def waivers_from_grant(check: object) -> list[Waiver]:
    """Waivers of a :class:`ps019.gate.breakglass.GrantCheck`: exactly its (effective) waived controls, and only
    while it is valid."""
    if not getattr(check, "valid", False) or not getattr(check, "grant_id", None):
        return []
    return [Waiver(control_id, "*", check.grant_id, "break-glass") for control_id in check.waived_controls]


def waivers_from_exceptions(exceptions: Sequence[object]) -> list[Waiver]:
    """Waivers of valid :class:`ps019.gate.exceptions.ControlException` s (pass only the ``valid`` list)."""
    return [Waiver(e.control_id, e.resource, e.exception_id, "exception") for e in exceptions]
