"""Ed25519 signing of evidence records as DSSE envelopes around in-toto Statement v1.

``keyid`` is the hex SHA-256 of the raw 32-byte public key. The signing key comes from (first match):
``EvidenceSettings.signing_key_file`` / ``signing_key``, ``$PS019_EVIDENCE_SIGNING_KEY_FILE``,
``$PS019_EVIDENCE_SIGNING_KEY`` (PEM or base64 of the raw 32-byte private key), else a per-user key generated once
next to the default store (``<data dir>/evidence-signing-key.pem``, mode 0600) -- a demo/local default only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ps019.errors import InputError
from ps019.evidence.canonical import canonical_bytes
from ps019.evidence.paths import default_data_dir

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://ps019.dev/evidence/change-record/v1"
SPOOL_PREDICATE_TYPE = "https://ps019.dev/evidence/spooled-record/v1"

ENV_KEY_FILE = "PS019_EVIDENCE_SIGNING_KEY_FILE"
ENV_KEY = "PS019_EVIDENCE_SIGNING_KEY"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def keyid_of(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()


class Signer:
    """An Ed25519 private key that signs DSSE envelopes. Never log or serialise ``_key``."""

    def __init__(self, private_key: Ed25519PrivateKey, source: str = "memory") -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.keyid = keyid_of(self.public_key)
        self.source = source  # where it came from (a path or env var name), never the key

    @classmethod
    def generate(cls) -> "Signer":
        return cls(Ed25519PrivateKey.generate(), source="generated")

    def public_key_pem(self) -> str:
        return self.public_key.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode()

    def public_key_b64(self) -> str:
        return base64.b64encode(raw_public_bytes(self.public_key)).decode()

    def private_key_pem(self) -> bytes:
        return self._key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())

    def sign_envelope(self, payload: bytes, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
        sig = self._key.sign(pae(payload_type, payload))
        return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode(),
                "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(sig).decode()}]}

    def sign_statement(self, subject_name: str, digest: str, predicate: Mapping[str, Any],
                       predicate_type: str = PREDICATE_TYPE) -> dict[str, Any]:
        return self.sign_envelope(canonical_bytes(statement(subject_name, digest, predicate, predicate_type)))

    def __repr__(self) -> str:
        return f"Signer(keyid={self.keyid[:16]}…, source={self.source})"


def statement(subject_name: str, digest: str, predicate: Mapping[str, Any],
              predicate_type: str = PREDICATE_TYPE) -> dict[str, Any]:
    return {"_type": STATEMENT_TYPE, "subject": [{"name": subject_name, "digest": {"sha256": digest}}],
            "predicateType": predicate_type, "predicate": dict(predicate)}


def parse_private_key(text: str | bytes, source: str) -> Ed25519PrivateKey:
    data = text.encode() if isinstance(text, str) else text
    data = data.strip()
    try:
        if data.startswith(b"-----BEGIN"):
            key = ser.load_pem_private_key(data, password=None)
        else:
            raw = base64.b64decode(data, validate=True)
            if len(raw) != 32:
                raise ValueError("raw Ed25519 private key must be 32 bytes")
            key = Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        # never echo the key material, only where it came from
        raise InputError(f"evidence signing key from {source} is not an Ed25519 key (PEM or base64 raw)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"evidence signing key from {source} is not an Ed25519 key")
    return key


def parse_public_key(value: str | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """PEM (SubjectPublicKeyInfo), base64 or hex of the raw 32 bytes."""
    if isinstance(value, Ed25519PublicKey):
        return value
    data = value.encode() if isinstance(value, str) else value
    data = data.strip()
    try:
        if data.startswith(b"-----BEGIN"):
            key = ser.load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not Ed25519")
            return key
        if len(data) == 64:
            try:
                return Ed25519PublicKey.from_public_bytes(bytes.fromhex(data.decode()))
            except ValueError:
                pass
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(data, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InputError("a verification key is not an Ed25519 public key (PEM, base64 or hex raw)") from exc


def public_key_map(keys: Mapping[str, Any] | None) -> dict[str, Ed25519PublicKey]:
    """keyid -> key. The keyid given in config must match the key (sha256 of raw bytes): a mislabelled key is an
    input error, not a silent trust decision."""
    out: dict[str, Ed25519PublicKey] = {}
    for given_id, value in (keys or {}).items():
        key = parse_public_key(value)
        actual = keyid_of(key)
        if given_id and given_id != actual:
            raise InputError(f"verify key {given_id[:16]}… does not match its key (keyid is {actual[:16]}…)")
        out[actual] = key
    return out


def verify_envelope(envelope: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> tuple[bool, str, bytes]:
    """(ok, reason, payload). ``reason`` names what failed: payload type, unknown key, bad signature."""
    try:
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            return False, f"envelope payloadType is {envelope.get('payloadType')!r}", b""
        payload = base64.b64decode(envelope["payload"], validate=True)
        sigs = envelope.get("signatures") or []
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False, "envelope is malformed", b""
    if not sigs:
        return False, "envelope has no signature", payload
    unknown = []
    for sig in sigs:
        keyid = sig.get("keyid", "")
        key = keys.get(keyid)
        if key is None:
            unknown.append(keyid)
            continue
        try:
            key.verify(base64.b64decode(sig.get("sig", ""), validate=True), pae(PAYLOAD_TYPE, payload))
            return True, "", payload
        except (InvalidSignature, ValueError, binascii.Error):
            return False, f"signature by key {keyid[:16]}… does not verify (signature replaced or payload edited)", payload
    return False, f"signed by unknown key {(unknown[0] or '<none>')[:16]}…", payload


def decode_statement(payload: bytes) -> dict[str, Any] | None:
    try:
        stmt = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return stmt if isinstance(stmt, dict) and stmt.get("_type") == STATEMENT_TYPE else None


def default_key_path() -> Path:
    return default_data_dir() / "evidence-signing-key.pem"


def load_signer(settings: Any = None) -> Signer:
    """The evidence signer (see module docstring for the order of sources)."""
    key_file = getattr(settings, "signing_key_file", None) or os.environ.get(ENV_KEY_FILE)
    key_text = getattr(settings, "signing_key", None)
    if key_text is not None and hasattr(key_text, "get_secret_value"):
        key_text = key_text.get_secret_value()
    if key_file:
        path = Path(key_file).expanduser()
        try:
            return Signer(parse_private_key(path.read_bytes(), str(path)), source=str(path))
        except OSError as exc:
            raise InputError(f"cannot read evidence signing key {path}: {exc.strerror}") from exc
    key_text = key_text or os.environ.get(ENV_KEY)
    if key_text:
        return Signer(parse_private_key(key_text, ENV_KEY), source=ENV_KEY)
    return _local_default_signer(default_key_path())


def _local_default_signer(path: Path) -> Signer:
    if path.exists():
        return Signer(parse_private_key(path.read_bytes(), str(path)), source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = Signer.generate()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(signer.private_key_pem())
    try:
        os.link(tmp, path)  # first writer wins; a concurrent loser reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return Signer(parse_private_key(path.read_bytes(), str(path)), source=str(path))
