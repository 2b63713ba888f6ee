"""Finding the CI job's ID token (the edge the pack and the CLI call), in the order of ``gate.oidc.token``:

1. the environment variable ``token.variable`` (default ``PS019_ID_TOKEN``): GitLab CI puts a token there with
   ``id_tokens: {PS019_ID_TOKEN: {aud: ...}}``; any CI can export one;
2. the file ``token.file`` (generic issuers that write the token to disk);
3. GitHub Actions: ``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<first audience>`` with
   ``Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` (the exchange ``core.getIDToken()`` does; the job needs
   ``permissions: id-token: write``). The answer is ``{"value": "<jwt>"}``.

Each of these is something the deployer's environment supplies, and that is fine: only the token's signature,
checked against the pinned JWKS, makes it count. Neither the token nor the request token is ever logged or recorded.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

from ps019.gate.ci_identity import CiIdentity, OidcSettings, unverified
from ps019.oidc.verify import MAX_TOKEN_BYTES, verify_token

GITHUB_URL_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN_ENV = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"


@dataclass(frozen=True)
class Found:
    token: str | None
    source: str | None
    problem: str | None = None

    def __repr__(self) -> str:  # never the token
        return f"Found(source={self.source!r}, problem={self.problem!r}, token={'<set>' if self.token else None})"


def _github_audience(settings: OidcSettings) -> str | None:
    for issuer in settings.issuers:
        if issuer.provider == "github":
            return issuer.audiences[0]
    return settings.issuers[0].audiences[0] if settings.issuers else None


def _github_request(url: str, request_token: str, audience: str | None, timeout: float) -> Found:
    source = f"GitHub Actions token request ({GITHUB_URL_ENV})"
    if audience:
        url += ("&" if "?" in url else "?") + "audience=" + urllib.parse.quote(audience, safe="")
    if not url.startswith(("https://", "http://")):
        return Found(None, source, f"{GITHUB_URL_ENV} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Authorization": f"bearer {request_token}",
                                                   "Accept": "application/json; api-version=2.0",
                                                   "User-Agent": "ps019"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked above
            data = response.read(MAX_TOKEN_BYTES * 2 + 1)
    except Exception as exc:  # noqa: BLE001 - reported, never raised; the message never holds the request token
        return Found(None, source, f"the token request failed ({type(exc).__name__})")
    try:
        value = json.loads(data.decode("utf-8")).get("value")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return Found(None, source, "the token request answered something that is not {\"value\": ...}")
    if not isinstance(value, str) or not value:
        return Found(None, source, "the token request answered no token")
    return Found(value, source)


def find_token(settings: OidcSettings, environ: Mapping[str, str], timeout: float = 5.0) -> Found:
    """The job's ID token and where it came from, or why there is none (never raises)."""
    spec = settings.token
    value = environ.get(spec.variable)
    if value:
        return Found(value, f"environment variable {spec.variable}")
    if spec.file:
        path = Path(spec.file).expanduser()
        try:
            data = path.read_bytes()[: MAX_TOKEN_BYTES + 1]
        except OSError as exc:
            return Found(None, f"file {path}", f"cannot read {path} ({exc.strerror or exc})")
        try:
            return Found(data.decode("utf-8").strip(), f"file {path}")
        except UnicodeDecodeError:
            return Found(None, f"file {path}", f"{path} is not UTF-8 text")
    url, request_token = environ.get(GITHUB_URL_ENV), environ.get(GITHUB_TOKEN_ENV)
    if spec.github and url and request_token:
        return _github_request(url, request_token, _github_audience(settings), timeout)
    where = [f"${spec.variable}"] + ([spec.file] if spec.file else []) + (
        [f"${GITHUB_URL_ENV}/${GITHUB_TOKEN_ENV} (GitHub Actions with id-token: write)"] if spec.github else [])
    return Found(None, None, "no CI OIDC ID token found (looked in " + ", ".join(where) + ")")


def ci_identity(settings: OidcSettings | None, environ: Mapping[str, str], now: datetime) -> CiIdentity | None:
    """Obtain and verify the job's ID token. None when no issuer is configured (OIDC is not in use). A token that
    verifies but comes from a repository no rule names is reported unverified (``OidcSettings.repository_problem``)."""
    if settings is None or not settings.issuers:
        return None
    found = find_token(settings, environ)
    if found.token is None:
        return unverified(found.problem or "no CI OIDC ID token", found.source)
    identity = verify_token(found.token, settings, now, source=found.source or "token")
    problem = settings.repository_problem(identity)
    return unverified(problem, identity.source) if problem else identity
