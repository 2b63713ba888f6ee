"""Seeding helpers for the auditor tests (no tests here): a known population appended through the real store path."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.plugins.evidence import make_record

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
SECRET = "hunter2-Sup3rS3cret-plaintext"  # must never appear in any output


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def gov(kind: str, payload, when: datetime, stack: str = "prod"):
    from ps019.evidence import EvidenceRecord, RecordKind

    return EvidenceRecord(kind=RecordKind(kind), organization="acme", project="payments", stack=stack,
                          environment="production", started_at=when, ended_at=when, outcome="recorded",
                          payload=payload)


def ident(name: str):
    from ps019.evidence import Identity

    return Identity(id=name, kind="local-user", verified=True, verified_by="signing-key")


def population():
    """The records of the known population, in append order. See test_audit_report for the expected numbers."""
    from ps019.evidence import (BreakGlassClosePayload, BreakGlassOpenPayload, BreakGlassReviewPayload,
                                ExceptionPayload, Identity, VerificationPayload, VerifiedReference)

    recs = []
    # 10 production updates: 2 emergency (under a verified break-glass grant), 3 incomplete.
    for i in range(10):
        over = {"started_at": h(i * 24), "forbidden_values": {SECRET},
                "change_request": f"CHG-{i} token={SECRET}" if i == 0 else f"CHG-{i}"}
        if i in (3, 7):
            over.update(change_class="emergency",
                        break_glass=VerifiedReference(ref_id=f"G{i}", kind="break_glass", verified=True))
        if i == 1:
            over["rollback_plan"] = None
        if i == 2:
            over["actor"] = Identity(id="alice", kind="local-user", verified=False)
        if i == 4:
            over["approvals"] = []
        recs.append(make_record(**over))
    # 4 staging updates, 2 previews, 3 blocked production attempts.
    recs += [make_record(stack="staging", environment="staging", started_at=h(i * 24 + 1)) for i in range(4)]
    recs += [make_record(kind="preview", started_at=h(i * 24 + 0.5)) for i in range(2)]
    recs += [make_record(kind="blocked", outcome="blocked", started_at=h(30 + i)) for i in range(3)]
    # Break-glass grants: G1..G3 reviewed after 2 h, 10 h, 30 h; G4 closed, never reviewed; G5 expired, never closed.
    for n, (opened, closed, review_after) in enumerate(((10, 12, 2), (40, 41, 10), (80, 82, 30), (100, 101, None)),
                                                       1):
        gid = f"G{n}"
        recs.append(gov("break_glass_open", BreakGlassOpenPayload(
            grant_id=gid, operator=ident("oncall"), reason="incident", incident=f"INC-{n}", opened_at=h(opened),
            expires_at=h(opened + 4)), h(opened)))
        recs.append(gov("break_glass_close", BreakGlassClosePayload(
            grant_id=gid, closed_by=ident("oncall"), closed_at=h(closed)), h(closed)))
        if review_after is not None:
            recs.append(gov("break_glass_review", BreakGlassReviewPayload(
                grant_id=gid, reviewer=ident("secops"), reviewed_at=h(closed + review_after)),
                h(closed + review_after)))
    recs.append(gov("break_glass_open", BreakGlassOpenPayload(
        grant_id="G5", operator=ident("oncall"), reason="incident", incident="INC-5", opened_at=h(150),
        expires_at=h(154)), h(150)))
    # Exceptions: E1 in force at the end of the period, E2 expired.
    recs.append(gov("exception", ExceptionPayload(exception_id="E1", control_id="PS019-IAM-001",
                                                  resource="urn:pulumi:prod::payments::*", reason="migration",
                                                  approved_by=[ident("ciso")], expires_at=h(24 * 60)), h(5)))
    recs.append(gov("exception", ExceptionPayload(exception_id="E2", control_id="PS019-IAM-002",
                                                  resource="urn:x", reason="old", approved_by=[ident("ciso")],
                                                  expires_at=h(6)), h(1)))
    # Post-release verification: one match, one drift.
    recs.append(gov("verification", VerificationPayload(matched=True), h(200)))
    recs.append(gov("verification", VerificationPayload(matched=False, changed=["urn:a"], missing=["urn:b"]), h(201)))
    return recs


PERIOD = (T0, T0 + timedelta(days=30))
NOW = T0 + timedelta(days=31)


def seed(store, signer, records=None):
    return [store.append(r, signer) for r in (records if records is not None else population())]
