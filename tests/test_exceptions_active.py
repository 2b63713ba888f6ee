"""Exceptions through the real evidence store: valid ones downgrade exactly one control on exactly the named
resource; expired, unapproved, untrusted or edited ones do nothing and are reported with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ps019.errors import InputError
from ps019.gate.breakglass import sign_document
from ps019.gate.exceptions import (
    ControlException,
    ExceptionSettings,
    active_exceptions,
    add_exception,
    exception_record,
    load_exception_records,
    summarize,
)
from ps019.gate.waivers import Waiver, apply_waivers, waivers_from_exceptions
from ps019.model import Diagnostic, Level, Severity
from tests.test_breakglass_support import (
    ALICE, CAROL, DAVE, KEYS, KNOWN_CONTROLS, OTHER_STACK, STACK, T0, gate_settings, signer, store,
)

__all__ = ["store", "signer"]

BUCKET = "urn:pulumi:prod::payments::aws:s3/bucket:Bucket::logs"
OTHER_BUCKET = "urn:pulumi:prod::payments::aws:s3/bucket:Bucket::data"


def add(store, signer, *, key="dave", approved_by=DAVE, control="PS019-IAM-001", resource=BUCKET, stack=STACK,
        expires=T0 + timedelta(days=30), now=T0):
    return add_exception(store, signer, KEYS[key], control_id=control, resource=resource, stack_ref=stack,
                         reason="legacy log bucket, migration ticket SEC-12", expires_at=expires,
                         approved_by=approved_by, gate_settings=gate_settings(), known_controls=KNOWN_CONTROLS,
                         now=now)


def active(store, now=T0 + timedelta(days=1), stack=STACK, settings=None):
    return active_exceptions(load_exception_records(store, stack), stack, now, gate_settings(), settings,
                             known_controls=KNOWN_CONTROLS)


def diag(control="PS019-IAM-001", urn=BUCKET, level=Level.MANDATORY):
    return Diagnostic(control, level, Severity.HIGH, urn, "finding")


def test_valid_exception_downgrades_exactly_the_named_control_on_the_named_resource(store, signer):
    exc = add(store, signer)
    valid, ignored = active(store)
    assert [e.exception_id for e in valid] == [exc.exception_id] and ignored == []
    waivers = waivers_from_exceptions(valid)
    downgraded = apply_waivers(diag(), waivers)
    assert downgraded.level == Level.ADVISORY and downgraded.waived_by == exc.exception_id
    assert downgraded.message == f"finding (waived by exception {exc.exception_id})"
    assert apply_waivers(diag(control="PS019-IAM-002"), waivers).level == Level.MANDATORY  # other control
    assert apply_waivers(diag(urn=OTHER_BUCKET), waivers).level == Level.MANDATORY  # other resource
    advisory = diag(level=Level.ADVISORY)
    assert apply_waivers(advisory, waivers) == advisory  # everything else unchanged


def test_pattern_exception_covers_only_matching_urns(store, signer):
    add(store, signer, resource="urn:pulumi:prod::payments::aws:s3/bucket:Bucket::log*")
    waivers = waivers_from_exceptions(active(store)[0])
    assert apply_waivers(diag(), waivers).level == Level.ADVISORY
    assert apply_waivers(diag(urn=OTHER_BUCKET), waivers).level == Level.MANDATORY


def test_expired_exception_does_nothing_and_is_reported(store, signer):
    exc = add(store, signer, expires=T0 + timedelta(days=2))
    valid, ignored = active(store, now=T0 + timedelta(days=3))
    assert valid == []
    assert ignored == [(exc, "expired at 2026-11-24T12:00:00Z")]


@pytest.mark.parametrize("key, approved_by, message", [
    ("carol", CAROL, "needs one of: approver, security|lacks role"),  # reviewer role cannot approve
    ("mallory", "mallory@example.com", "not in the trusted keys"),
    ("dave", CAROL, "not of carol"),  # dave's key claiming carol approved
])
def test_unapproved_exceptions_refused_at_add(store, signer, key, approved_by, message):
    with pytest.raises(InputError, match=message):
        add(store, signer, key=key, approved_by=approved_by)


def _smuggle(store, signer, exc: ControlException, key: str):
    signed = sign_document(exc, KEYS[key])
    store.append(exception_record(signed), signer)
    return signed


def _unsigned(**over):
    fields = dict(exception_id="EX-20261122-000000000001", control_id="PS019-IAM-001", resource=BUCKET, stack=STACK,
                  reason="r", approved_by=DAVE, approved_at=T0, expires_at=T0 + timedelta(days=30), key_id="")
    fields.update(over)
    return ControlException(**fields)


@pytest.mark.parametrize("key, over, reason", [
    ("mallory", {}, "not approved: signature invalid / untrusted key"),
    ("carol", {"approved_by": CAROL}, "not approved: key of carol@example.com lacks role approver/security"),
    ("alice", {"approved_by": ALICE}, "not approved: key of"),
    ("dave", {"approved_by": CAROL}, "not approved: signed by the key of dave@example.com, not of carol"),
    ("dave", {"stack": OTHER_STACK}, f"for stack {OTHER_STACK}, not {STACK}"),
    ("dave", {"resource": "urn:pulumi:prod::payments::*"}, "could match every resource of the stack"),
    ("dave", {"resource": "urn:pulumi:prod::payments::*:*"}, "could match every resource of the stack"),
    ("dave", {"resource": "urn:pulumi:prod::payments::[!~]*"}, "could match every resource of the stack"),
    ("dave", {"resource": "urn:pulumi:prod::payments::aws:s3/*::logs"}, "could match every resource of the stack"),
    ("dave", {"resource": "urn:pulumi:prod::payments::aws:s3/bucket:Bucket"}, "name the resource's type"),
    ("dave", {"control_id": "PS019-GATE-002", "resource": "urn:pulumi:prod::payments::pulumi:pulumi:Stack::"
              "payments-prod"}, "PS019-GATE-002 may not be waived by an exception"),
    ("dave", {"resource": "urn:pulumi:*::payments::aws:s3/bucket:Bucket::logs"}, "is not a URN of stack"),
    ("dave", {"control_id": "PS019-EVIDENCE-001"}, "may not be waived by an exception"),
    ("dave", {"expires_at": T0 + timedelta(days=365)}, "longer than the maximum of 90 days"),
    ("dave", {"control_id": "PS019-IAM-777"}, "not a control of this pack"),
])
def test_unusable_exceptions_in_the_store_do_nothing_and_are_reported(store, signer, key, over, reason):
    exc = _smuggle(store, signer, _unsigned(**over), key)
    stack = over.get("stack", STACK)
    # The exception record is stored under its own stack: read it where the gate would.
    valid, ignored = active_exceptions(load_exception_records(store, stack), STACK, T0 + timedelta(days=1),
                                       gate_settings(), known_controls=KNOWN_CONTROLS)
    assert valid == []
    assert len(ignored) == 1 and ignored[0][0] == exc
    assert reason in ignored[0][1] or __import__("re").search(reason, ignored[0][1]), ignored[0][1]


def test_tampered_exception_fails(store, signer):
    good = add(store, signer)
    widened = good.model_copy(update={"exception_id": "EX-20261122-00000000000f",
                                      "resource": "urn:pulumi:prod::payments::aws:s3/bucket:Bucket::*"})
    store.append(exception_record(widened), signer)  # signature copied from the real one
    valid, ignored = active(store)
    assert [e.exception_id for e in valid] == [good.exception_id]
    assert ignored[0][0].exception_id == widened.exception_id
    assert "signature does not match" in ignored[0][1]


def test_record_edited_outside_the_signed_document(store, signer):
    good = add(store, signer)
    record = load_exception_records(store, STACK)[0]
    payload = record.payload.model_copy(update={"control_id": "PS019-IAM-002"})
    store.append(record.model_copy(update={"record_id": "edited", "payload": payload}), signer)
    valid, ignored = active(store)
    assert [e.exception_id for e in valid] == [good.exception_id]  # the replayed signed doc adds nothing
    # (the edited twin has the same signed document: an identical replay, ignored silently)


def test_exception_for_another_stack_does_nothing_here(store, signer):
    add(store, signer, stack=OTHER_STACK, resource="urn:pulumi:staging::payments::aws:s3/bucket:Bucket::logs")
    assert active(store) == ([], [])  # not even loaded for this stack
    valid, _ = active(store, stack=OTHER_STACK)
    assert len(valid) == 1


def test_summary_feeds_waivers_and_evidence(store, signer):
    good = add(store, signer)
    expired = add(store, signer, expires=T0 + timedelta(hours=1), control="PS019-IAM-002")
    summary = summarize(load_exception_records(store, STACK), STACK, T0 + timedelta(days=1), gate_settings(),
                        known_controls=KNOWN_CONTROLS)
    assert summary.waivers() == [Waiver("PS019-IAM-001", BUCKET, good.exception_id, "exception")]
    refs = {r["ref_id"]: r for r in summary.evidence_references()}
    assert refs[good.exception_id]["verified"] is True
    assert refs[expired.exception_id]["verified"] is False
    assert refs[expired.exception_id]["failures"] == ["expired at 2026-11-22T13:00:00Z"]


def test_exception_preferred_over_grant_when_both_cover(store, signer):
    waivers = [Waiver("PS019-IAM-001", "*", "BG-20261122-aaaaaaaaaaaa", "break-glass"),
               Waiver("PS019-IAM-001", BUCKET, "EX-20261122-aaaaaaaaaaaa", "exception")]
    assert apply_waivers(diag(), waivers).waived_by == "EX-20261122-aaaaaaaaaaaa"
    assert apply_waivers(diag(urn=OTHER_BUCKET), waivers).waived_by == "BG-20261122-aaaaaaaaaaaa"


def test_settings_accept_camel_case():
    settings = ExceptionSettings.model_validate({"maxDurationDays": 30, "approverRoles": ["security"]})
    assert settings.max_duration_days == 30 and settings.approver_roles == ("security",)
