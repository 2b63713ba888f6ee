"""Shared set-up for the break-glass and exception tests (imported by tests/test_breakglass_*.py and
tests/test_exceptions_*.py; holds no tests itself): people with keys, gate settings that trust them, a store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ps019.gate import signing
from ps019.gate.breakglass import BreakGlassSettings, VerifiedIdentity
from ps019.gate.settings import GateSettings

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
STACK = "acme/payments/prod"
OTHER_STACK = "acme/payments/staging"
ALICE = "arn:aws:sts::123456789012:assumed-role/BreakGlass/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/BreakGlass/bob"
CAROL = "carol@example.com"
DAVE = "dave@example.com"
MALLORY = "mallory@example.com"

KEYS = {name: signing.generate_private_key() for name in ("alice", "bob", "carol", "dave", "mallory")}


def trusted_entry(name: str, identity: str, roles: tuple[str, ...]) -> dict:
    return {"public_key": signing.public_key_text(KEYS[name]), "identity": identity, "roles": list(roles)}


def gate_settings(**extra) -> GateSettings:
    """alice and bob are operators, carol a reviewer, dave security + approver; mallory's key is NOT trusted."""
    return GateSettings(trusted_keys=[
        trusted_entry("alice", ALICE, ("operator",)),
        trusted_entry("bob", BOB, ("operator",)),
        trusted_entry("carol", CAROL, ("reviewer",)),
        trusted_entry("dave", DAVE, ("security", "approver")),
    ], **extra)


def who(identity: str) -> VerifiedIdentity:
    return VerifiedIdentity(identity, "aws-sts", "sts:GetCallerIdentity", "123456789012")


@pytest.fixture
def store(tmp_path):
    from ps019.evidence import open_store

    with open_store(f"sqlite://{tmp_path / 'evidence.db'}") as opened:
        yield opened


@pytest.fixture
def signer():
    from ps019.evidence import Signer

    return Signer.generate()


KNOWN_CONTROLS = ("PS019-GATE-001", "PS019-GATE-002", "PS019-IAM-001", "PS019-IAM-002", "PS019-EVIDENCE-001", "PS019-GATE-050")


def open_alice(store, signer, *, waive=("PS019-IAM-001",), ttl=timedelta(hours=2), now=T0, stack=STACK,
               settings=None, gs=None):
    from ps019.gate.breakglass import open_grant

    return open_grant(store, signer, KEYS["alice"], who(ALICE), stack, reason="payments down", incident="INC-7",
                      ttl=ttl, waive=list(waive), gate_settings=gs or gate_settings(),
                      settings=settings or BreakGlassSettings(), known_controls=KNOWN_CONTROLS, now=now)
