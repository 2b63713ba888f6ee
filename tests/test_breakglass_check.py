"""Break-glass grants through the real evidence store (sqlite): what the gate sees via check_break_glass."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from ps019.errors import InputError
from ps019.gate import signing
from ps019.gate.breakglass import (
    BreakGlassSettings,
    check_break_glass,
    close_grant,
    grant_record,
    load_break_glass_records,
    review_grant,
    sign_document,
)
from ps019.model import Diagnostic, Level, Severity
from ps019.gate.waivers import apply_waivers, waivers_from_grant
from tests.test_breakglass_support import (
    ALICE, BOB, CAROL, DAVE, KEYS, KNOWN_CONTROLS, OTHER_STACK, STACK, T0, gate_settings, open_alice, signer, store,
    who,
)

__all__ = ["store", "signer"]


def check(store, deployer=ALICE, now=T0 + timedelta(minutes=5), stack=STACK, settings=None, grant_id=None, gs=None):
    records = load_break_glass_records(store, stack, grant_id)
    return check_break_glass(records, stack, deployer, now, gs or gate_settings(), settings or BreakGlassSettings(),
                             grant_id=grant_id, known_controls=KNOWN_CONTROLS)


def test_open_grant_is_valid_for_its_operator_on_its_stack_as_an_emergency(store, signer):
    grant = open_alice(store, signer)
    result = check(store)
    assert result.valid, result.problems
    assert result.grant_id == grant.grant_id
    assert result.change_class == "emergency"
    assert result.operator == ALICE
    assert result.waived_controls == ("PS019-IAM-001",)
    assert result.expires_at == T0 + timedelta(hours=2)
    assert "INC-7" in result.summary()


def test_no_grant_at_all_is_reported_precisely(store):
    result = check(store)
    assert not result.valid and result.grant_id is None
    assert result.problems == (f"no break-glass grant for stack {STACK}",)


def test_other_operator_cannot_use_the_grant(store, signer):
    grant = open_alice(store, signer)
    result = check(store, deployer=BOB)
    assert not result.valid
    assert result.grant_id == grant.grant_id
    assert f"issued to {ALICE}, not {BOB}" in result.problems


def test_unknown_deployer_cannot_use_the_grant(store, signer):
    open_alice(store, signer)
    result = check(store, deployer=None)
    assert not result.valid
    assert any("deploying identity is unknown" in p for p in result.problems)


def test_grant_cannot_be_used_on_another_stack(store, signer):
    grant = open_alice(store, signer)
    # Not found implicitly on the other stack ...
    implicit = check(store, stack=OTHER_STACK)
    assert not implicit.valid and implicit.grant_id is None
    # ... and when presented explicitly, refused with the reason.
    presented = check(store, stack=OTHER_STACK, grant_id=grant.grant_id)
    assert not presented.valid
    assert f"grant is for stack {STACK}, not {OTHER_STACK}" in presented.problems


def test_grant_expires_by_itself(store, signer):
    open_alice(store, signer, ttl=timedelta(hours=1))
    assert check(store, now=T0 + timedelta(minutes=59)).valid
    result = check(store, now=T0 + timedelta(hours=1))
    assert not result.valid
    assert "expired at 2026-11-22T13:00:00Z" in result.problems


def test_closed_grant_cannot_be_reused(store, signer):
    grant = open_alice(store, signer)
    close_grant(store, signer, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gate_settings(),
                now=T0 + timedelta(minutes=30))
    result = check(store, now=T0 + timedelta(minutes=31))
    assert not result.valid
    assert f"closed at 2026-11-22T12:30:00Z by {ALICE}" in result.problems
    # Replaying the original open record does not resurrect it: the close is keyed by grant ID.
    original = load_break_glass_records(store, STACK)[0]
    store.append(original.model_copy(update={"record_id": "replayed-open"}), signer)
    again = check(store, now=T0 + timedelta(minutes=32))
    assert not again.valid and any(p.startswith("closed at") for p in again.problems)


def test_close_twice_and_close_by_another_operator_are_refused(store, signer):
    grant = open_alice(store, signer)
    with pytest.raises(InputError, match="only the key that opened it"):
        close_grant(store, signer, KEYS["bob"], who(BOB), grant.grant_id, gate_settings=gate_settings(), now=T0)
    close_grant(store, signer, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gate_settings(), now=T0)
    with pytest.raises(InputError, match="already closed"):
        close_grant(store, signer, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gate_settings(), now=T0)


def _append_forged(store, signer, grant):
    store.append(grant_record(grant, who(grant.operator)), signer)


def test_edited_grant_fails_signature(store, signer):
    grant = open_alice(store, signer, now=T0 - timedelta(days=1))  # an old, expired grant
    forged = grant.model_copy(update={"grant_id": "BG-20261122-0123456789ab", "issued_at": T0,
                                      "expires_at": T0 + timedelta(hours=2)})
    _append_forged(store, signer, forged)
    result = check(store, grant_id=forged.grant_id)
    assert not result.valid
    assert any(p.startswith("signature invalid / untrusted key: signature does not match") for p in result.problems)


def test_signature_copied_from_another_grant_fails(store, signer):
    real = open_alice(store, signer)
    forged = real.model_copy(update={"grant_id": "BG-20261122-aaaaaaaaaaaa", "waived_controls": ("PS019-IAM-002",)})
    _append_forged(store, signer, forged)
    result = check(store, grant_id=forged.grant_id)
    assert not result.valid and any("signature does not match" in p for p in result.problems)


def test_grant_for_bob_signed_with_alices_key_fails(store, signer):
    from ps019.gate.breakglass import BreakGlassGrant

    forged = sign_document(BreakGlassGrant(
        grant_id="BG-20261122-bbbbbbbbbbbb", stack=STACK, operator=BOB, identity_source="aws-sts", reason="x",
        incident="INC-1", issued_at=T0, expires_at=T0 + timedelta(hours=1), key_id=""), KEYS["alice"])
    _append_forged(store, signer, forged)
    result = check(store, deployer=BOB)
    assert not result.valid
    assert f"signed by the key of {ALICE}, not of the operator {BOB}" in result.problems


def test_grant_signed_by_untrusted_key_fails(store, signer):
    from ps019.gate.breakglass import BreakGlassGrant

    forged = sign_document(BreakGlassGrant(
        grant_id="BG-20261122-cccccccccccc", stack=STACK, operator=ALICE, identity_source="aws-sts", reason="x",
        incident="INC-1", issued_at=T0, expires_at=T0 + timedelta(hours=1), key_id=""), KEYS["mallory"])
    _append_forged(store, signer, forged)
    result = check(store)
    assert not result.valid
    assert any("signature invalid / untrusted key" in p and "not in the trusted keys" in p for p in result.problems)


def test_grant_signed_by_reviewer_key_lacks_operator_role(store, signer):
    from ps019.gate.breakglass import BreakGlassGrant

    gs = gate_settings()
    forged = sign_document(BreakGlassGrant(
        grant_id="BG-20261122-dddddddddddd", stack=STACK, operator=CAROL, identity_source="ci-env", reason="x",
        incident="INC-1", issued_at=T0, expires_at=T0 + timedelta(hours=1), key_id=""), KEYS["carol"])
    _append_forged(store, signer, forged)
    result = check(store, deployer=CAROL, gs=gs)
    assert not result.valid and any("lacks role operator" in p for p in result.problems)


def test_record_fields_edited_outside_the_signed_document_are_detected(store, signer):
    grant = open_alice(store, signer)
    record = load_break_glass_records(store, STACK)[0]
    payload = record.payload.model_copy(update={"waived_controls": ["PS019-IAM-001", "PS019-IAM-002"]})
    store.append(record.model_copy(update={"record_id": "edited", "payload": payload}), signer)
    result = check(store)
    # The signed document never widened (the edit cannot add a waiver), and the grant fails closed: an edited
    # record of a grant means someone is tampering with the store.
    assert result.grant_id == grant.grant_id
    assert not result.valid
    assert "record was edited: record waived_controls differ from the signed grant" in result.problems
    assert waivers_from_grant(result) == []


def test_forged_signature_bytes_rejected(store, signer):
    grant = open_alice(store, signer)
    bad = grant.model_copy(update={"grant_id": "BG-20261122-eeeeeeeeeeee",
                                   "signature": base64.b64encode(b"x" * 10).decode()})
    _append_forged(store, signer, bad)
    result = check(store, grant_id=bad.grant_id)
    assert not result.valid and any("64 bytes" in p for p in result.problems)


def test_ttl_longer_than_allowed_refused_at_open_and_at_check(store, signer):
    with pytest.raises(InputError, match="exceeds the maximum"):
        open_alice(store, signer, ttl=timedelta(hours=5))
    open_alice(store, signer, ttl=timedelta(hours=4))
    strict = BreakGlassSettings(max_ttl_hours=1)
    result = check(store, settings=strict)
    assert not result.valid and any("exceeds the maximum of 1h" in p for p in result.problems)


@pytest.mark.parametrize("waive, message", [
    (("all",), "no wildcards, no 'all'"),
    (("PS019-IAM-*",), "no wildcards"),
    (("PS019-IAM-999",), "no such control"),
    (("PS019-EVIDENCE-001",), "non-waivable"),
    (("PS019-GATE-050",), "non-waivable"),
])
def test_waive_only_named_existing_waivable_controls(store, signer, waive, message):
    with pytest.raises(InputError, match=message):
        open_alice(store, signer, waive=waive)


def test_open_refused_with_someone_elses_key_or_untrusted_key(store, signer):
    from ps019.gate.breakglass import open_grant

    for key, message in ((KEYS["bob"], "belongs to"), (KEYS["mallory"], "not among the gate's trusted keys"),
                         (KEYS["carol"], "needs one of: operator")):
        with pytest.raises(InputError, match=message):
            open_grant(store, signer, key, who(ALICE), STACK, reason="r", incident="i", ttl=timedelta(hours=1),
                       waive=[], gate_settings=gate_settings(), known_controls=KNOWN_CONTROLS, now=T0)


def test_waived_control_downgraded_unwaived_control_still_mandatory(store, signer):
    grant = open_alice(store, signer, waive=("PS019-IAM-001",))
    waivers = waivers_from_grant(check(store))
    urn = "urn:pulumi:prod::payments::aws:iam/policy:Policy::p"
    waived = apply_waivers(Diagnostic("PS019-IAM-001", Level.MANDATORY, Severity.HIGH, urn, "too broad"), waivers)
    assert waived.level == Level.ADVISORY
    assert waived.waived_by == grant.grant_id
    assert waived.message == f"too broad (overridden under grant {grant.grant_id})"
    other = Diagnostic("PS019-IAM-002", Level.MANDATORY, Severity.HIGH, urn, "trust *")
    assert apply_waivers(other, waivers) == other


def test_invalid_grant_waives_nothing(store, signer):
    open_alice(store, signer)
    assert waivers_from_grant(check(store, deployer=BOB)) == []


def test_non_waivable_setting_applies_to_existing_grants(store, signer):
    open_alice(store, signer, waive=("PS019-IAM-001", "PS019-IAM-002"))
    tightened = BreakGlassSettings(non_waivable_controls=("PS019-IAM-002",))
    result = check(store, settings=tightened)
    assert result.valid and result.waived_controls == ("PS019-IAM-001",)
    assert any("PS019-IAM-002 is not waivable" in n for n in result.notices)


def _close_at(store, signer, grant, when):
    close_grant(store, signer, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gate_settings(), now=when)


def test_review_by_the_operator_themself_is_refused(store, signer):
    grant = open_alice(store, signer)
    _close_at(store, signer, grant, T0 + timedelta(hours=1))
    with pytest.raises(InputError, match="different person"):
        review_grant(store, signer, KEYS["alice"], ALICE, grant.grant_id, notes="fine", links=[],
                     gate_settings=gate_settings(), now=T0 + timedelta(hours=2))
    with pytest.raises(InputError, match="key that opened grant .* different person"):
        # claiming to be someone else does not help while signing with the operator's key
        review_grant(store, signer, KEYS["alice"], CAROL, grant.grant_id, notes="fine", links=[],
                     gate_settings=gate_settings(), now=T0 + timedelta(hours=2))
    with pytest.raises(InputError, match="does not match the key"):
        review_grant(store, signer, KEYS["carol"], DAVE, grant.grant_id, notes="fine", links=[],
                     gate_settings=gate_settings(), now=T0 + timedelta(hours=2))


def test_self_review_smuggled_into_the_store_does_not_count(store, signer):
    """An operator who also holds a reviewer key cannot satisfy the review obligation themself."""
    from ps019.gate.breakglass import BreakGlassReview, review_record

    from tests.test_breakglass_support import trusted_entry

    gs = gate_settings().model_copy(update={"trusted_keys": [
        signing.TrustedKey(**trusted_entry("alice", ALICE, ("operator", "reviewer")))]})
    grant = open_alice(store, signer, gs=gs)
    _close_at_gs = close_grant(store, signer, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gs,
                               now=T0 + timedelta(hours=1))
    assert _close_at_gs
    review = sign_document(BreakGlassReview(grant_id=grant.grant_id, stack=STACK, reviewer=ALICE,
                                            reviewed_at=T0 + timedelta(hours=2), notes="all good", key_id=""),
                           KEYS["alice"])
    store.append(review_record(review), signer)
    later = T0 + timedelta(days=10)
    result = check(store, now=later, gs=gs)
    assert any("must be by a different person" in n for n in result.notices)
    assert result.overdue_reviews and result.overdue_reviews[0].grant_id == grant.grant_id


def test_overdue_review_reported_and_blocks_next_grant(store, signer):
    first = open_alice(store, signer)
    _close_at(store, signer, first, T0 + timedelta(hours=1))
    settings = BreakGlassSettings(review_sla_hours=24, block_on_overdue_review=True)
    later = T0 + timedelta(hours=26)
    # Reported:
    result = check(store, now=later, settings=settings)
    assert [o.grant_id for o in result.overdue_reviews] == [first.grant_id]
    assert any(f"review of break-glass grant {first.grant_id}" in n and "overdue since 2026-11-23T13:00:00Z" in n
               for n in result.notices)
    # Blocking a new open:
    with pytest.raises(InputError, match=f"blocked until the overdue review is recorded.*{first.grant_id}"):
        open_alice(store, signer, now=later, settings=settings)
    # A grant opened anyway (e.g. by an older client) is unusable:
    from ps019.gate.breakglass import BreakGlassGrant

    sneaky = sign_document(BreakGlassGrant(
        grant_id="BG-20261123-ffffffffffff", stack=STACK, operator=ALICE, identity_source="aws-sts", reason="x",
        incident="INC-8", issued_at=later, expires_at=later + timedelta(hours=1), key_id=""), KEYS["alice"])
    _append_forged(store, signer, sneaky)
    blocked = check(store, now=later + timedelta(minutes=1), settings=settings)
    assert not blocked.valid
    assert f"blocked by overdue review of {first.grant_id} (due 2026-11-23T13:00:00Z)" in blocked.problems
    # When blocking is off, only reported (and Alice's own next grant is not held for her unreviewed one either):
    relaxed = BreakGlassSettings(review_sla_hours=24, block_on_overdue_review=False, review_before_next_grant=False)
    assert check(store, now=later + timedelta(minutes=1), settings=relaxed).valid
    # The review by a different person lifts the block:
    review_grant(store, signer, KEYS["carol"], CAROL, first.grant_id, notes="root cause: expired cert",
                 links=["https://wiki/pir/7"], gate_settings=gate_settings(), now=later)
    cleared = check(store, now=later + timedelta(minutes=2), settings=settings)
    assert cleared.valid, cleared.problems
    assert not cleared.overdue_reviews


def test_review_of_an_active_grant_is_refused(store, signer):
    grant = open_alice(store, signer)
    with pytest.raises(InputError, match="still active"):
        review_grant(store, signer, KEYS["carol"], CAROL, grant.grant_id, notes="n", links=[],
                     gate_settings=gate_settings(), now=T0 + timedelta(minutes=10))


def test_concurrent_opens_do_not_corrupt_the_store(tmp_path, signer):
    """Eight opens at the same moment, from threads with their own store connections: every grant is recorded once,
    all valid, and the stack's chain verifies. (One operator's grants, so the rule that her next grant waits for a
    review of the last is off here: it is not what this test races.)"""
    from concurrent.futures import ThreadPoolExecutor

    from ps019.evidence import open_store, verify_store

    url = f"sqlite://{tmp_path / 'evidence.db'}"
    unchained = BreakGlassSettings(review_before_next_grant=False)

    def one(i):
        with open_store(url) as st:
            return open_alice(st, signer, waive=(), now=T0, settings=unchained).grant_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(one, range(8)))
    assert len(set(ids)) == 8
    with open_store(url) as st:
        records = load_break_glass_records(st, STACK)
        assert sorted(r.payload.grant_id for r in records) == sorted(ids)
        assert sorted(r.sequence for r in records) == list(range(1, 9))
        result = check(st, settings=unchained)
        assert result.valid and result.grant_id in ids
        verification = verify_store(st, signer.public_key and {signer.keyid: signer.public_key})
        assert getattr(verification, "ok", True), verification


def test_local_user_name_cannot_use_a_grant_even_if_it_matches(store, signer):
    open_alice(store, signer)
    records = load_break_glass_records(store, STACK)
    result = check_break_glass(records, STACK, ALICE, T0 + timedelta(minutes=5), gate_settings(),
                               deployer_verified_by="local-user")
    assert not result.valid and any("only asserted (local user name)" in p for p in result.problems)
    assert check_break_glass(records, STACK, ALICE, T0 + timedelta(minutes=5), gate_settings(),
                             deployer_verified_by="sts").valid


def test_signed_body_has_one_fixed_form():
    """Signatures cover this exact canonical text: timestamps are whole UTC seconds with a Z, control IDs sorted.
    If this test breaks, every grant ever signed stops verifying."""
    from ps019.gate.breakglass import BreakGlassGrant
    from ps019.gate.signing import canonical_json

    grant = BreakGlassGrant(grant_id="BG-20261122-0123456789ab", stack=STACK, operator=ALICE,
                            identity_source="aws-sts", reason="r", incident="INC-1",
                            waived_controls=("PS019-IAM-002", "PS019-IAM-001"),
                            issued_at=T0.replace(microsecond=999), expires_at="2026-11-22T14:00:00+01:00",
                            key_id="ed25519:00")
    assert canonical_json(grant.body()) == (
        b'{"expires_at":"2026-11-22T13:00:00Z","grant_id":"BG-20261122-0123456789ab","identity_source":"aws-sts",'
        b'"incident":"INC-1","issued_at":"2026-11-22T12:00:00Z","key_id":"ed25519:00",'
        b'"operator":"' + ALICE.encode() + b'","reason":"r","stack":"acme/payments/prod",'
        b'"waived_controls":["PS019-IAM-001","PS019-IAM-002"]}')


def test_grant_record_moved_to_another_stack_chain_fails(store, signer):
    grant = open_alice(store, signer)
    record = load_break_glass_records(store, STACK)[0]
    moved = record.model_copy(update={"record_id": "moved", "stack": "staging"})
    store.append(moved, signer)
    result = check(store, stack=OTHER_STACK, grant_id=grant.grant_id)
    assert not result.valid
    assert f"grant is for stack {STACK}, not {OTHER_STACK}" in result.problems
    assert any(p.startswith("record was edited: record stack acme/payments/staging") for p in result.problems)


def test_sts_grant_needs_an_sts_verified_deployer(store, signer):
    """A grant opened by an STS-verified operator cannot be used by a deployer named only by CI variables."""
    open_alice(store, signer)
    records = load_break_glass_records(store, STACK)
    when = T0 + timedelta(minutes=5)
    ci = check_break_glass(records, STACK, ALICE, when, gate_settings(), deployer_verified_by="ci")
    assert not ci.valid and any("not STS" in p for p in ci.problems)
    assert check_break_glass(records, STACK, ALICE, when, gate_settings(), deployer_verified_by="sts").valid


def test_someone_elses_closed_grant_is_not_offered_as_a_reason(store, signer):
    grant = open_alice(store, signer)
    close_grant(store, signer, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gate_settings(),
                now=T0 + timedelta(minutes=30))
    result = check(store, deployer="bob@example.com", now=T0 + timedelta(minutes=31))
    assert not result.valid and result.grant_id is None
    assert result.problems == (f"no break-glass grant for stack {STACK}",)
