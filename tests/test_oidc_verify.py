"""Attacks on the CI OIDC ID token check, against a throwaway local issuer (own RSA key pair and JWKS on loopback).

Each test hands ``ps019.oidc.verify_token`` a token an insider could produce -- unsigned, signed with the issuer's
public key as an HMAC secret, signed by their own key, expired, for another audience, garbage -- and asserts it does
not count, with a reason. The claim sets are the documented GitHub Actions and GitLab CI shapes (tests/data/oidc)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from ps019.gate.ci_identity import ClaimRule, OidcSettings, rule_problems
from ps019.oidc import jwks as jwks_mod
from ps019.oidc.local_issuer import LocalIssuer
from ps019.oidc.source import find_token
from ps019.oidc.verify import verify_token

DATA = Path(__file__).parent / "data" / "oidc"
GITHUB = json.loads((DATA / "github-actions.claims.json").read_text())
GITLAB = json.loads((DATA / "gitlab-ci.claims.json").read_text())
AUD = "ps019"
SHA = "4f1c0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"


@pytest.fixture(scope="module")
def issuer():
    return LocalIssuer("https://token.example.test")


def settings_for(issuer: LocalIssuer, provider="github", **over) -> OidcSettings:
    spec = {"name": provider, "issuer": issuer.issuer, "provider": provider, "audiences": [AUD],
            "jwks": issuer.jwks(), **over}
    return OidcSettings(issuers=[spec], rules={"production": [{"issuer": provider,
                                                                "repository": ["octo-org/octo-repo"],
                                                                "ref": ["refs/heads/main"], "ref_protected": True,
                                                                "environment": ["prod"]}]})


def github_token(issuer: LocalIssuer, **over) -> str:
    now = int(time.time())
    claims = {**GITHUB, "aud": AUD, "sha": SHA, "run_id": "4242", "iat": now, "nbf": now - 5, "exp": now + 300,
              "jti": f"jti-{now}-{id(over)}", **over}
    claims.pop("iss", None)
    return issuer.mint(claims)


def now() -> datetime:
    return datetime.now(timezone.utc)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: dict, payload: dict | bytes, signature: bytes = b"") -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{b64(json.dumps(header).encode())}.{b64(body)}.{b64(signature)}"


# --- the honest tokens ------------------------------------------------------------------------------------------------


def test_a_github_actions_token_with_the_documented_claims_verifies(issuer):
    result = verify_token(github_token(issuer), settings_for(issuer), now())
    assert result.verified, result.problem
    assert (result.repository, result.ref, result.sha, result.actor) == ("octo-org/octo-repo", "refs/heads/main",
                                                                         SHA, "octocat")
    assert result.ref_protected is True and result.environment == "prod" and result.event == "workflow_dispatch"
    assert result.workflow == GITHUB["job_workflow_ref"] and result.run_key == "4242/2"
    assert result.run_url == "https://github.com/octo-org/octo-repo/actions/runs/4242/attempts/2"
    assert rule_problems(result, settings_for(issuer).rules["production"]) == []


def test_a_gitlab_id_token_with_the_documented_claims_verifies(issuer):
    now_s = int(time.time())
    claims = {**GITLAB, "aud": AUD, "iat": now_s, "nbf": now_s - 5, "exp": now_s + 3600}
    claims.pop("iss")
    settings = settings_for(issuer, provider="gitlab")
    result = verify_token(issuer.mint(claims), settings, now())
    assert result.verified, result.problem
    assert (result.repository, result.ref, result.actor) == ("my-group/my-project", "refs/heads/feature-branch-1",
                                                             "sample-user")
    assert result.actor_names == ("sample-user@example.com",) and result.ref_protected is False
    assert result.workflow == GITLAB["ci_config_ref_uri"] and result.run_key == "574/302"
    rules = [ClaimRule(issuer="gitlab", repository=["my-group/my-project"], ref=["refs/heads/main"],
                       ref_protected=True)]
    problems = rule_problems(result, rules)
    assert problems and "ref refs/heads/feature-branch-1 is not one of ['refs/heads/main']" in problems[0]
    assert "ref_protected is False" in problems[0]


# --- forged tokens ----------------------------------------------------------------------------------------------------


def _claims(issuer: LocalIssuer, **over) -> dict:
    now_s = int(time.time())
    return {**GITHUB, "iss": issuer.issuer, "aud": AUD, "sha": SHA, "iat": now_s, "nbf": now_s - 5,
            "exp": now_s + 300, **over}


def test_alg_none_is_refused(issuer):
    token = craft({"alg": "none", "kid": issuer.kid, "typ": "JWT"}, _claims(issuer))
    result = verify_token(token, settings_for(issuer), now())
    assert not result.verified and "algorithm 'none' is not accepted" in result.problem
    token = craft({"alg": "none", "kid": issuer.kid}, _claims(issuer), b"")[:-1] + "."  # empty signature segment
    assert not verify_token(token.rstrip("."), settings_for(issuer), now()).verified


def test_hs256_signed_with_the_issuers_public_key_is_refused(issuer):
    """Key confusion: the public key (PEM, or the JWK's modulus) used as an HMAC secret."""
    for secret in (issuer.public_pem(), json.dumps(issuer.jwks()["keys"][0]).encode()):
        header = {"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(_claims(issuer)).encode())}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        result = verify_token(f"{signing_input}.{b64(signature)}", settings_for(issuer), now())
        assert not result.verified and "algorithm 'HS256' is not accepted" in result.problem


def test_symmetric_and_none_algorithms_cannot_even_be_configured(issuer):
    for alg in ("HS256", "none"):
        with pytest.raises(ValidationError):
            settings_for(issuer, algorithms=[alg])


def test_a_token_signed_by_another_key_is_refused(issuer):
    impostor = LocalIssuer(issuer.issuer, kid=issuer.kid)  # same kid, own key
    result = verify_token(impostor.mint({k: v for k, v in _claims(issuer).items() if k != "iss"}),
                          settings_for(issuer), now())
    assert not result.verified and "signature does not verify" in result.problem


def test_an_unknown_kid_is_refused(issuer):
    other = LocalIssuer(issuer.issuer, kid="not-pinned")
    token = other.mint({k: v for k, v in _claims(issuer).items() if k != "iss"})
    result = verify_token(token, settings_for(issuer), now())
    assert not result.verified and "key 'not-pinned', which is not a key of issuer github" in result.problem


# Times are offsets from the moment the test runs (not from collection: a long suite would age them).
@pytest.mark.parametrize("over, reason", [
    ({"exp": -600, "iat": -900, "nbf": -900}, "expired"),
    ({"nbf": +600, "iat": 0}, "not valid yet"),
    ({"iat": +600, "nbf": -5, "exp": +900}, "not valid yet"),
    ({"iss": "https://token.actions.githubusercontent.com"}, "not a configured issuer"),
    ({"aud": "https://github.com/octo-org"}, "audience"),
    ({"jti": None}, "no 'jti' claim"),
    ({"exp": 8 * 86400}, "max_lifetime_seconds"),
])
def test_expired_early_wrong_issuer_or_audience_is_refused(issuer, over, reason):
    t = int(time.time())
    over = {k: (t + v if k in ("exp", "iat", "nbf") else v) for k, v in over.items()}
    claims = _claims(issuer, **over)
    iss = claims.pop("iss")
    token = issuer.mint({**claims, "iss": iss} if iss != issuer.issuer else claims)
    result = verify_token(token, settings_for(issuer), now())
    assert not result.verified and reason in result.problem, result.problem


@pytest.mark.parametrize("over, field", [
    ({"repository": "octo-org/other-repo"}, "repository"),
    ({"ref": "refs/heads/feature"}, "ref refs/heads/feature"),
    ({"ref_protected": "false"}, "ref_protected"),
    ({"environment": "staging"}, "environment"),
])
def test_a_valid_token_for_another_repository_branch_or_environment_matches_no_rule(issuer, over, field):
    result = verify_token(github_token(issuer, **over), settings_for(issuer), now())
    assert result.verified
    problems = rule_problems(result, settings_for(issuer).rules["production"])
    assert problems and field in problems[0]


def test_a_rule_must_name_the_repository(issuer):
    with pytest.raises(ValidationError):
        OidcSettings(issuers=[{"name": "github", "issuer": issuer.issuer, "audiences": [AUD],
                               "jwks": issuer.jwks()}], rules={"production": [{"issuer": "github"}]})


GARBAGE = {
    "empty": "",
    "not a jwt": "hello",
    "two segments": "eyJhbGciOiJSUzI1NiJ9.e30",
    "binary": "\x00\xff\xfe.abc.def",
    "oversized": "a" * 20000 + ".b.c",
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_is_refused_with_a_reason(issuer, name):
    result = verify_token(GARBAGE[name], settings_for(issuer), now())
    assert not result.verified and result.problem


def test_truncated_non_utf8_nested_and_duplicate_key_tokens_are_refused(issuer):
    good = github_token(issuer)
    header = {"alg": "RS256", "kid": issuer.kid}
    cases = {
        "truncated": good[:-12],
        "truncated payload": good.split(".")[0] + "." + good.split(".")[1][:-7] + "." + good.split(".")[2],
        "non-UTF-8 payload": craft(header, b"\xff\xfe{}"),
        "deeply nested": craft(header, b'{"a":' * 5000 + b"1" + b"}" * 5000),
        "duplicate key": craft(header, b'{"iss": "%s", "sub": "a", "sub": "b"}' % issuer.issuer.encode()),
        "array payload": craft(header, b"[1, 2]"),
    }
    for name, token in cases.items():
        result = verify_token(token, settings_for(issuer), now())
        assert not result.verified and result.problem, name
    assert "duplicate key 'sub'" in verify_token(cases["duplicate key"], settings_for(issuer), now()).problem


# --- where the token comes from -----------------------------------------------------------------------------------------


def test_github_token_exchange_requests_the_configured_audience_and_never_echoes_the_request_token():
    with LocalIssuer() as issuer:
        issuer.job_claims = {**{k: v for k, v in GITHUB.items() if k not in ("iss", "aud", "iat", "nbf", "exp",
                                                                                "jti")}, "sha": SHA}
        settings = settings_for(issuer)
        found = find_token(settings, issuer.github_job_env())
        assert found.token and found.source.startswith("GitHub Actions token request")
        assert issuer.request_token not in repr(found) and found.token not in repr(found)
        result = verify_token(found.token, settings, now(), source=found.source)
        assert result.verified and result.claims["aud"] == AUD
        bad = find_token(settings, {**issuer.github_job_env(), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong"})
        assert bad.token is None and "failed" in bad.problem and "wrong" not in bad.problem


def test_token_variable_and_file_sources(issuer, tmp_path):
    token = github_token(issuer)
    settings = settings_for(issuer)
    assert find_token(settings, {"PS019_ID_TOKEN": token}).token == token
    path = tmp_path / "token"
    path.write_text(token + "\n")
    by_file = OidcSettings(issuers=settings.issuers, token={"variable": "NOPE", "file": str(path), "github": False})
    assert find_token(by_file, {}).token == token
    missing = find_token(settings, {})
    assert missing.token is None and "PS019_ID_TOKEN" in missing.problem


def test_discovery_fetches_the_jwks_from_the_issuers_host_once_per_cache_period():
    jwks_mod.clear_cache()
    with LocalIssuer() as issuer:
        issuer.job_claims = {}
        settings = OidcSettings(issuers=[{"name": "github", "issuer": issuer.issuer, "provider": "github",
                                          "audiences": [AUD], "discovery": True}])
        for _ in range(2):
            result = verify_token(github_token(issuer), settings, now())
            assert result.verified, result.problem
        assert issuer.requests.count("/.well-known/jwks") == 1
    jwks_mod.clear_cache()


def test_discovery_refuses_a_document_of_another_issuer_and_plain_http_elsewhere():
    from ps019.gate.ci_identity import OidcIssuer

    jwks_mod.clear_cache()
    with LocalIssuer() as issuer:
        # The server answers for http://127.0.0.1:<port>; asked as localhost, its document names another issuer.
        other_name = OidcIssuer(name="x", issuer=issuer.issuer.replace("127.0.0.1", "localhost"), audiences=[AUD],
                                discovery=True)
        with pytest.raises(ValueError, match="not the discovery document"):
            jwks_mod.discovered_keys(other_name)
    remote_http = OidcIssuer(name="y", issuer="http://token.example.test", audiences=[AUD], discovery=True)
    with pytest.raises(ValueError, match="not https"):
        jwks_mod.discovered_keys(remote_http)
    jwks_mod.clear_cache()
