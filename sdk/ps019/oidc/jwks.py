"""The issuer's signing keys: pinned in the pack config (``jwks`` inline or ``jwks_file``), and optionally fetched from
the issuer's OpenID discovery document and kept for ``jwks_cache_seconds`` in this process.

The fetch trusts only what the pack config says: https (http only for a loopback issuer, as in tests), the
``jwks_uri`` on the issuer's own host, the CA roots botocore ships with (never ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``)
and no proxy from the environment. Whoever runs ``pulumi up`` controls those variables; with them they could hand the
pack their own JWKS. The cache lives in memory only: a cache file in the deployer's home directory would be theirs to
rewrite. Pinning the JWKS is the hardened setting (docs/threat-model.md).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from ps019.gate.ci_identity import OidcIssuer

MAX_DOCUMENT_BYTES = 256 * 1024
_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
_lock = threading.Lock()
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _keys_of(document: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{where} is not a JWKS (an object with a 'keys' list)")
    return [k for k in document["keys"] if isinstance(k, Mapping)]


def pinned_keys(issuer: OidcIssuer) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = []
    if issuer.jwks is not None:
        keys += _keys_of(issuer.jwks, f"issuers[{issuer.name}].jwks")
    if issuer.jwks_file:
        path = Path(issuer.jwks_file).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"jwks_file {path}: {exc.strerror or exc}") from None
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"jwks_file {path} is over {MAX_DOCUMENT_BYTES} bytes")
        try:
            keys += _keys_of(json.loads(data.decode("utf-8")), f"jwks_file {path}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"jwks_file {path} is not JSON") from None
    return keys


def _check_url(url: str, issuer: OidcIssuer) -> None:
    parts = urllib.parse.urlsplit(url)
    base = urllib.parse.urlsplit(issuer.issuer)
    loopback = parts.hostname in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"{url} is not https")
    if parts.hostname != base.hostname or parts.port != base.port:
        raise ValueError(f"{url} is not on the issuer's host {base.hostname}")


def _get_json(url: str, timeout: float) -> Any:
    import ssl

    from botocore.httpsession import get_cert_path

    # The CA roots botocore ships with (certifi when installed): never SSL_CERT_FILE / SSL_CERT_DIR from the env.
    context = ssl.create_default_context(cafile=get_cert_path(True))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "ps019"})
    with opener.open(request, timeout=timeout) as response:  # noqa: S310 - scheme checked by _check_url
        data = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    return json.loads(data.decode("utf-8"))


def discovered_keys(issuer: OidcIssuer, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The issuer's JWKS via ``/.well-known/openid-configuration``, reused for ``jwks_cache_seconds``."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(issuer.issuer)
        if hit and now - hit[0] < issuer.jwks_cache_seconds:
            return hit[1]
    config_url = issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
    _check_url(config_url, issuer)
    config = _get_json(config_url, timeout)
    if not isinstance(config, Mapping) or config.get("issuer", "").rstrip("/") != issuer.issuer.rstrip("/"):
        raise ValueError(f"{config_url} is not the discovery document of {issuer.issuer}")
    jwks_uri = config.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError(f"{config_url} names no jwks_uri")
    _check_url(jwks_uri, issuer)
    keys = _keys_of(_get_json(jwks_uri, timeout), jwks_uri)
    with _lock:
        _cache[issuer.issuer] = (now, keys)
    return keys


def issuer_keys(issuer: OidcIssuer) -> list[dict[str, Any]]:
    """Pinned keys first; the discovered ones only when discovery is on (a kid found in both uses the pinned key)."""
    keys = pinned_keys(issuer)
    if issuer.discovery:
        pinned = {k.get("kid") for k in keys}
        keys += [k for k in discovered_keys(issuer) if k.get("kid") not in pinned]
    return keys
