"""Ed25519 signatures over RFC 8785 canonical JSON: approvals, break-glass grants and exceptions.

Why these choices:

* **Ed25519** (``cryptography``): small keys that fit in a config file, deterministic signatures (no nonce to get
  wrong), no parameters to misconfigure.
* **RFC 8785 canonical JSON** (``rfc8785``): the signer and the verifier serialise the same object to the same bytes
  whatever their key order or whitespace, so a signature covers the *meaning* of a document, not its formatting.
* **A purpose string** is part of every signed message (``ps019-sig-v1\\n<purpose>\\n<canonical json>``), so a
  signature made for one kind of document (an approval) can never be replayed as another (a break-glass grant or an
  exception), even if the two bodies happened to have the same shape.

Key files:

* private key: PKCS#8 PEM, unencrypted, mode 0600 (refused when group/other can read it, as ``ssh`` does);
* public key: one line, base64 of the 32 raw bytes (PEM ``PUBLIC KEY`` is accepted too).

Key ID: ``ed25519:`` + the first 32 hex characters (128 bits) of SHA-256 over the 32 raw public-key bytes. The ID is
only a lookup hint: verification always uses the trusted public key found under that ID, so an ID collision can
never make a signature from an untrusted key verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ps019.errors import InputError

KEY_ID_PREFIX = "ed25519:"
KEY_ID_HEX_CHARS = 32
SIGNATURE_VERSION = "ps019-sig-v1"

# Purposes in use (one per signed document kind). Other modules may define their own; keep them stable.
PURPOSE_APPROVAL = "ps019/change-approval/v1"
PURPOSE_BREAK_GLASS = "ps019/break-glass-grant/v1"
PURPOSE_EXCEPTION = "ps019/exception/v1"


class TrustedKey(BaseModel):
    """One entry of ``trusted_keys`` in the gate settings: a public key the security team trusts, whose identity
    it is, and which roles its signatures may claim."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    public_key: str = Field(description="base64 of the 32 raw Ed25519 public-key bytes, or a PEM PUBLIC KEY block")
    identity: str = Field(min_length=1, description="who holds the private key, e.g. alice@example.com")
    roles: tuple[str, ...] = Field(default=("approver",), description="roles this key may sign as")

    @field_validator("public_key")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_public_key(value)  # raises ValueError with a precise reason
        return value.strip()

    @property
    def key_id(self) -> str:
        return key_id(parse_public_key(self.public_key))


@dataclass(frozen=True)
class Signature:
    key_id: str
    value: str  # base64 of the 64-byte Ed25519 signature


@dataclass(frozen=True)
class Verification:
    ok: bool
    key: TrustedKey | None = None  # the trusted key that verified (or that the key ID named, when it failed)
    problem: str = ""


# --- canonical form -------------------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 bytes of a JSON-compatible value (dicts with str keys, lists, str, int, float, bool, None)."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"cannot canonicalise document for signing: {exc}") from None


def signed_message(obj: Any, purpose: str) -> bytes:
    if not purpose or "\n" in purpose:
        raise ValueError("purpose must be a non-empty single line")
    return f"{SIGNATURE_VERSION}\n{purpose}\n".encode() + canonical_json(obj)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- keys -----------------------------------------------------------------------------------------------------------


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    if isinstance(public_key, Ed25519PrivateKey):
        public_key = public_key.public_key()
    return KEY_ID_PREFIX + sha256_hex(raw_public_bytes(public_key))[:KEY_ID_HEX_CHARS]


def public_key_text(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The one-line form used in key files and in ``trusted_keys``."""
    if isinstance(public_key, Ed25519PrivateKey):
        public_key = public_key.public_key()
    return base64.b64encode(raw_public_bytes(public_key)).decode("ascii")


def parse_public_key(text: str | bytes) -> Ed25519PublicKey:
    """Accept base64 of the raw 32 bytes or a PEM ``PUBLIC KEY`` block; raise ValueError saying what is wrong."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    data = data.strip()
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise ValueError(f"not a readable PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"PEM public key is {type(key).__name__}, not Ed25519")
        return key
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public key is neither PEM nor valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"public key decodes to {len(raw)} bytes; an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_keypair(private_key: Ed25519PrivateKey, directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``<name>.key`` (PEM, 0600, never overwritten) and ``<name>.pub`` (base64 raw) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(f"{path} already exists; refusing to overwrite a key file")
    # O_EXCL + mode at creation: the private key is never readable by others, not even for an instant.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(private_key))
    public_path.write_text(public_key_text(private_key) + "\n")
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key file; refuse files that group/other may read (the key would not be private)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"private key {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"private key {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"private key {path} is accessible by group/other (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"private key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"private key {path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"private key {path} is {type(key).__name__}, not Ed25519")
    return key


# --- sign / verify --------------------------------------------------------------------------------------------------


def sign(obj: Any, private_key: Ed25519PrivateKey, *, purpose: str) -> Signature:
    """Sign the canonical JSON of ``obj`` for ``purpose``."""
    raw = private_key.sign(signed_message(obj, purpose))
    return Signature(key_id=key_id(private_key), value=base64.b64encode(raw).decode("ascii"))


def trusted_index(trusted: Iterable[TrustedKey] | Mapping[str, TrustedKey]) -> dict[str, TrustedKey]:
    if isinstance(trusted, Mapping):
        return dict(trusted)
    return {key.key_id: key for key in trusted}


def verify(
    obj: Any,
    signature: str,
    signer_key_id: str,
    trusted: Iterable[TrustedKey] | Mapping[str, TrustedKey],
    *,
    purpose: str,
) -> Verification:
    """Check that ``signature`` over ``obj`` for ``purpose`` was made by the trusted key named ``signer_key_id``.

    Never raises for bad input: every failure is a ``Verification(ok=False, problem=...)`` a user can act on.
    """
    keys = trusted_index(trusted)
    key = keys.get(signer_key_id)
    if key is None:
        return Verification(False, None, f"key {signer_key_id!r} is not in the trusted keys")
    try:
        raw = base64.b64decode(signature or "", validate=True)
    except (binascii.Error, ValueError):
        return Verification(False, key, "signature is not valid base64")
    if len(raw) != 64:
        return Verification(False, key, f"signature is {len(raw)} bytes; an Ed25519 signature is 64 bytes")
    try:
        message = signed_message(obj, purpose)
    except InputError as exc:
        return Verification(False, key, str(exc))
    try:
        parse_public_key(key.public_key).verify(raw, message)
    except InvalidSignature:
        return Verification(
            False,
            key,
            f"signature does not match the signed content for key {signer_key_id} "
            "(the document was changed after signing, or it was signed for something else)",
        )
    return Verification(True, key)
