"""Ed25519 signing over canonical JSON: what approvers, break-glass grants and exceptions rely on."""

import base64
import os
import stat

import pytest

from ps019.errors import InputError
from ps019.gate import signing
from ps019.gate.signing import PURPOSE_APPROVAL, PURPOSE_EXCEPTION, TrustedKey

DOC = {"ticket": "CHG-1", "stacks": ["acme/web/prod"], "n": 3, "nested": {"b": 1, "a": [1, 2]}}


@pytest.fixture(scope="module")
def alice():
    key = signing.generate_private_key()
    return key, TrustedKey(public_key=signing.public_key_text(key), identity="alice@example.com", roles=("approver",))


def test_signature_verifies_against_trusted_key(alice):
    key, trusted = alice
    sig = signing.sign(DOC, key, purpose=PURPOSE_APPROVAL)
    result = signing.verify(DOC, sig.value, sig.key_id, [trusted], purpose=PURPOSE_APPROVAL)
    assert result.ok and result.key.identity == "alice@example.com"


def test_key_order_and_formatting_do_not_matter(alice):
    key, trusted = alice
    sig = signing.sign(DOC, key, purpose=PURPOSE_APPROVAL)
    reordered = {"nested": {"a": [1, 2], "b": 1}, "n": 3, "stacks": ["acme/web/prod"], "ticket": "CHG-1"}
    assert signing.verify(reordered, sig.value, sig.key_id, [trusted], purpose=PURPOSE_APPROVAL).ok


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.update(ticket="CHG-2"),
        lambda d: d.update(stacks=["acme/web/staging"]),
        lambda d: d["nested"]["a"].append(3),
        lambda d: d.update(extra=None),
    ],
)
def test_any_content_change_breaks_the_signature(alice, tamper):
    key, trusted = alice
    sig = signing.sign(DOC, key, purpose=PURPOSE_APPROVAL)
    changed = {"ticket": "CHG-1", "stacks": ["acme/web/prod"], "n": 3, "nested": {"b": 1, "a": [1, 2]}}
    tamper(changed)
    result = signing.verify(changed, sig.value, sig.key_id, [trusted], purpose=PURPOSE_APPROVAL)
    assert not result.ok and "does not match the signed content" in result.problem


def test_signature_for_one_purpose_is_not_valid_for_another(alice):
    key, trusted = alice
    sig = signing.sign(DOC, key, purpose=PURPOSE_APPROVAL)
    assert not signing.verify(DOC, sig.value, sig.key_id, [trusted], purpose=PURPOSE_EXCEPTION).ok


def test_untrusted_key_is_rejected_even_if_it_claims_a_trusted_key_id(alice):
    _, trusted = alice
    mallory = signing.generate_private_key()
    sig = signing.sign(DOC, mallory, purpose=PURPOSE_APPROVAL)
    result = signing.verify(DOC, sig.value, sig.key_id, [trusted], purpose=PURPOSE_APPROVAL)
    assert not result.ok and "not in the trusted keys" in result.problem
    # Claiming alice's key ID does not help: the trusted public key is what verifies.
    result = signing.verify(DOC, sig.value, trusted.key_id, [trusted], purpose=PURPOSE_APPROVAL)
    assert not result.ok and "does not match" in result.problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [("", "64 bytes"), ("not base64!!", "not valid base64"), (base64.b64encode(b"x" * 10).decode(), "10 bytes")],
)
def test_malformed_signatures_fail_without_raising(alice, value, problem):
    _, trusted = alice
    result = signing.verify(DOC, value, trusted.key_id, [trusted], purpose=PURPOSE_APPROVAL)
    assert not result.ok and problem in result.problem


def test_key_id_format_is_stable(alice):
    key, trusted = alice
    kid = signing.key_id(key)
    assert kid == trusted.key_id == signing.key_id(key.public_key())
    assert kid.startswith("ed25519:") and len(kid) == len("ed25519:") + 32
    raw = signing.raw_public_bytes(key.public_key())
    import hashlib

    assert kid[len("ed25519:"):] == hashlib.sha256(raw).hexdigest()[:32]


def test_public_key_accepted_as_base64_or_pem(alice):
    key, _ = alice
    from cryptography.hazmat.primitives import serialization

    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signing.key_id(signing.parse_public_key(pem.decode())) == signing.key_id(key)
    assert signing.key_id(signing.parse_public_key(signing.public_key_text(key))) == signing.key_id(key)


@pytest.mark.parametrize(("text", "problem"), [("abc$", "neither PEM nor valid base64"), ("AAAA", "3 bytes")])
def test_bad_trusted_key_config_is_a_precise_error(text, problem):
    with pytest.raises(ValueError, match=problem):
        TrustedKey(public_key=text, identity="x")


def test_keypair_files_private_is_0600_and_never_overwritten(tmp_path):
    key = signing.generate_private_key()
    private_path, public_path = signing.write_keypair(key, tmp_path / "keys", "alice")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert signing.key_id(signing.load_private_key(private_path)) == signing.key_id(key)
    assert signing.parse_public_key(public_path.read_text()) is not None
    with pytest.raises(InputError, match="already exists"):
        signing.write_keypair(signing.generate_private_key(), tmp_path / "keys", "alice")


def test_readable_private_key_is_refused(tmp_path):
    private_path, _ = signing.write_keypair(signing.generate_private_key(), tmp_path, "k")
    os.chmod(private_path, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        signing.load_private_key(private_path)


def test_missing_or_garbage_private_key_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        signing.load_private_key(tmp_path / "nope.key")
    bad = tmp_path / "bad.key"
    bad.write_text("hello")
    os.chmod(bad, 0o600)
    with pytest.raises(InputError, match="not an unencrypted PEM private key"):
        signing.load_private_key(bad)
