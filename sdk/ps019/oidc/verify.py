"""Verifying a CI job's OIDC ID token with PyJWT (docs/dependencies.md says why that library).

``verify_token(token, settings, now)`` -> ``CiIdentity``. It never raises: every way a token can fail becomes the
``problem`` text of an unverified identity. Checks, in order:

1. size (16 KiB at most) and shape: three base64url segments whose header and payload are JSON objects, UTF-8, with
   no duplicate keys (a duplicate ``sub`` read last-wins by one parser and first-wins by another is two tokens);
2. the issuer (``iss``) is one configured in ``gate.oidc.issuers``;
3. the header's ``alg`` is one the issuer allows (asymmetric only: ``none`` and ``HS*`` never verify, so a token
   "signed" with the issuer's public key as an HMAC secret is refused), and its ``kid`` is a key of the issuer's pinned
   JWKS (or of the JWKS fetched through discovery); the key's own ``alg``, when it states one, must agree;
4. the signature, ``iss``, ``aud`` (one of the issuer's audiences), ``exp``, ``nbf``, ``iat`` (with the issuer's
   leeway), the presence of ``sub`` and ``jti``, and a lifetime (``exp - iat``) within ``max_lifetime_seconds``.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from ps019.gate.change_request import DuplicateKey, no_duplicate_keys
from ps019.gate.ci_identity import CiIdentity, OidcIssuer, OidcSettings, identity_from_claims, unverified

MAX_TOKEN_BYTES = 16 * 1024
_REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]

JwksProvider = Callable[[OidcIssuer], "list[Mapping[str, Any]]"]


class _Bad(ValueError):
    pass


def _segment(text: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _Bad(f"its {what} is not base64url") from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"its {what} is not UTF-8") from None
    try:
        value = json.loads(decoded, object_pairs_hook=no_duplicate_keys)
    except DuplicateKey as exc:
        raise _Bad(f"its {what} has a {exc}") from None
    except RecursionError:
        raise _Bad(f"its {what} is nested too deeply") from None
    except ValueError:
        raise _Bad(f"its {what} is not JSON") from None
    if not isinstance(value, dict):
        raise _Bad(f"its {what} is not a JSON object")
    return value


def parse_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of a compact JWS, without verifying anything; raises ValueError with a short reason."""
    if len(token) > MAX_TOKEN_BYTES:
        raise _Bad(f"it is {len(token)} bytes, over the {MAX_TOKEN_BYTES}-byte limit")
    if not token.isascii():
        raise _Bad("it contains non-ASCII characters")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise _Bad("it is not a signed JWT (three base64url segments)")
    return _segment(parts[0], "header"), _segment(parts[1], "payload")


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return repr(ts)


def verify_token(token: str, settings: OidcSettings, now: datetime, *, source: str = "token",
                 jwks_provider: JwksProvider | None = None) -> CiIdentity:
    """The verified CI identity the token states, or why it states none (see the module docstring)."""
    import jwt

    from ps019.oidc.jwks import issuer_keys

    token = (token or "").strip()
    if not token:
        return unverified("the ID token is empty", source)
    try:
        header, payload = parse_unverified(token)
    except ValueError as exc:
        return unverified(f"the ID token is malformed: {exc}", source)
    iss = payload.get("iss")
    issuer = settings.issuer_for(iss) if isinstance(iss, str) else None
    if issuer is None:
        configured = ", ".join(i.issuer for i in settings.issuers) or "none"
        return unverified(f"the ID token's issuer {iss!r} is not a configured issuer ({configured})", source)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in issuer.algorithms:
        return unverified(f"the ID token's algorithm {alg!r} is not accepted for issuer {issuer.name} "
                          f"(accepted: {', '.join(issuer.algorithms)})", source)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        return unverified("the ID token's header names no key (kid)", source)
    try:
        keys = (jwks_provider or issuer_keys)(issuer)
    except Exception as exc:  # noqa: BLE001 - an edge reports
        return unverified(f"the keys of issuer {issuer.name} could not be read: {exc}", source)
    jwk = next((k for k in keys if k.get("kid") == kid), None)
    if jwk is None:
        return unverified(f"the ID token is signed with key {kid!r}, which is not a key of issuer {issuer.name}",
                          source)
    if jwk.get("alg") not in (None, alg):
        return unverified(f"key {kid!r} of issuer {issuer.name} is for {jwk.get('alg')}, not {alg}", source)
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=alg).key
    except Exception as exc:  # noqa: BLE001 - jwt.PyJWKError and friends
        return unverified(f"key {kid!r} of issuer {issuer.name} is unusable for {alg}: {exc}", source)
    try:
        claims = jwt.decode(
            token, key=key, algorithms=[alg], audience=list(issuer.audiences), issuer=issuer.issuer,
            leeway=issuer.leeway_seconds,
            options={"require": _REQUIRED, "verify_signature": True, "verify_exp": True, "verify_nbf": True,
                     "verify_iat": True, "verify_aud": True, "verify_iss": True},
        )
    except jwt.ExpiredSignatureError:
        return unverified(f"the ID token expired at {_when(payload.get('exp'))}", source)
    except jwt.ImmatureSignatureError:
        return unverified(f"the ID token is not valid yet (nbf {_when(payload.get('nbf'))}, "
                          f"iat {_when(payload.get('iat'))})", source)
    except jwt.InvalidAudienceError:
        return unverified(f"the ID token's audience {payload.get('aud')!r} is not one of {issuer.audiences}", source)
    except jwt.InvalidIssuerError:
        return unverified(f"the ID token's issuer {iss!r} is not {issuer.issuer}", source)
    except jwt.MissingRequiredClaimError as exc:
        return unverified(f"the ID token has no {exc.claim!r} claim", source)
    except jwt.InvalidSignatureError:
        return unverified(f"the ID token's signature does not verify with key {kid!r} of issuer {issuer.name}",
                          source)
    except jwt.PyJWTError as exc:
        return unverified(f"the ID token does not verify: {type(exc).__name__}: {exc}", source)
    except Exception as exc:  # noqa: BLE001 - never a traceback from a crafted token
        return unverified(f"the ID token does not verify: {type(exc).__name__}", source)
    # PyJWT accepts an iat in the future; a token issued later than now (beyond the leeway) was not issued by a
    # provider with a sane clock, or is meant for later.
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)):
        return unverified("the ID token's iat and exp are not numbers", source)
    if iat > now.timestamp() + issuer.leeway_seconds:
        return unverified(f"the ID token was issued in the future (iat {_when(iat)})", source)
    if exp - iat > issuer.max_lifetime_seconds:
        return unverified(f"the ID token lives {int(exp - iat)} s, more than issuer {issuer.name}'s "
                          f"max_lifetime_seconds {issuer.max_lifetime_seconds}", source)
    return identity_from_claims(issuer, claims, source)
