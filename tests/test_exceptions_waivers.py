"""apply_waivers properties: a waiver changes only a MANDATORY diagnostic of exactly its control on a resource its
pattern covers, and then only its level, waived_by and a message suffix."""

from __future__ import annotations

import dataclasses
import fnmatch

from hypothesis import given, settings, strategies as st

from ps019.gate.breakglass import GrantCheck, presented_grant_id
from ps019.gate.waivers import Waiver, apply_waivers, waivers_from_grant
from ps019.model import Diagnostic, Level, Severity

CONTROLS = st.sampled_from(["PS019-IAM-001", "PS019-IAM-002", "PS019-GATE-001", "PS019-IDENTITY-003"])
NAMES = st.sampled_from(["logs", "data", "logs-old", "x"])
TYPES = st.sampled_from(["aws:s3/bucket:Bucket", "aws:iam/policy:Policy"])


@st.composite
def diagnostics(draw):
    urn = f"urn:pulumi:prod::payments::{draw(TYPES)}::{draw(NAMES)}"
    return Diagnostic(draw(CONTROLS), draw(st.sampled_from(list(Level))), draw(st.sampled_from(list(Severity))), urn,
                      draw(st.text(min_size=1, max_size=20)))


@st.composite
def waivers(draw):
    pattern = draw(st.sampled_from(["*", "urn:pulumi:prod::payments::aws:s3/bucket:Bucket::logs",
                                    "urn:pulumi:prod::payments::aws:s3/bucket:Bucket::logs*",
                                    "urn:pulumi:prod::payments::aws:iam/policy:Policy::*"]))
    kind = draw(st.sampled_from(["exception", "break-glass"]))
    ref = ("EX-" if kind == "exception" else "BG-") + "20261122-" + draw(st.sampled_from(["a" * 12, "b" * 12]))
    return Waiver(draw(CONTROLS), pattern, ref, kind)


@settings(max_examples=300, deadline=None)
@given(diagnostics(), st.lists(waivers(), max_size=4))
def test_waivers_touch_only_covered_mandatory_findings(diagnostic, given_waivers):
    out = apply_waivers(diagnostic, given_waivers)
    covering = [w for w in given_waivers
                if w.control_id == diagnostic.control_id and fnmatch.fnmatchcase(diagnostic.urn, w.urn_pattern)]
    if diagnostic.level != Level.MANDATORY or not covering:
        assert out == diagnostic
        return
    chosen = out.waived_by
    assert chosen in {w.reference for w in covering}
    if any(w.kind == "exception" for w in covering):
        assert chosen.startswith("EX-")  # the narrower, pre-approved decision is named
    assert out.level == Level.ADVISORY and out.message.startswith(diagnostic.message)
    assert dataclasses.replace(out, level=diagnostic.level, waived_by=None, message=diagnostic.message) == diagnostic


def test_grant_waivers_only_when_valid_and_only_listed_controls():
    valid = GrantCheck("BG-20261122-aaaaaaaaaaaa", True, waived_controls=("PS019-IAM-001",))
    assert waivers_from_grant(valid) == [Waiver("PS019-IAM-001", "*", "BG-20261122-aaaaaaaaaaaa", "break-glass")]
    assert waivers_from_grant(dataclasses.replace(valid, valid=False)) == []
    assert waivers_from_grant(GrantCheck("BG-20261122-aaaaaaaaaaaa", True)) == []  # nothing waived implicitly


def test_presented_grant_from_env_or_stack_config():
    assert presented_grant_id({"PS019_BREAK_GLASS_GRANT": " BG-1 "}) == "BG-1"
    assert presented_grant_id({}, {"ps019:breakGlassGrant": "BG-2"}) == "BG-2"
    assert presented_grant_id({"PS019_BREAK_GLASS_GRANT": "  "}) is None
