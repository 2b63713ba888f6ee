"""A throwaway OIDC issuer on loopback, for ``ps019 demo`` and the tests: its own RSA key pair and JWKS, tokens shaped
like GitHub Actions' and GitLab CI's (claim names from their documentation, see ``ps019.gate.ci_identity``), and a
small HTTP server with the discovery document, the JWKS and a GitHub-style token endpoint
(``ACTIONS_ID_TOKEN_REQUEST_URL``). It signs with a key it made itself, so nothing it mints is trusted anywhere but by a
pack config that pins its JWKS.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalIssuer:
    """``issuer`` is ``http://127.0.0.1:<port>`` once ``start()``ed (or any URL given, without a server)."""

    def __init__(self, issuer: str | None = None, *, kid: str | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid or f"ps019-local-{secrets.token_hex(4)}"
        self.issuer = issuer or ""
        self.request_token = secrets.token_urlsafe(24)  # what ACTIONS_ID_TOKEN_REQUEST_TOKEN carries
        self.job_claims: dict[str, Any] = {}  # what the token endpoint puts in the tokens it mints
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    # --- keys and tokens ------------------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)

    def mint(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None, key: Any = None,
             algorithm: str = "RS256") -> str:
        import jwt

        now = int(time.time())
        payload = {"iss": self.issuer, "iat": now, "nbf": now - 5, "exp": now + 300, "jti": secrets.token_hex(16),
                   **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key if key is not None else self.private_key, algorithm=algorithm,
                          headers={"kid": self.kid, **(headers or {})})

    # --- the HTTP side --------------------------------------------------------------------------------------------

    def start(self) -> "LocalIssuer":
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                issuer.requests.append(url.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.issuer, "jwks_uri": f"{issuer.issuer}/.well-known/jwks",
                                "id_token_signing_alg_values_supported": ["RS256"]})
                elif url.path == "/.well-known/jwks":
                    self._json(issuer.jwks())
                elif url.path == "/token":
                    if self.headers.get("Authorization") != f"bearer {issuer.request_token}":
                        self._json({"message": "bad request token"}, 401)
                        return
                    audience = urllib.parse.parse_qs(url.query).get("audience", [None])[0]
                    self._json({"value": issuer.mint({**issuer.job_claims, "aud": audience})})
                else:
                    self._json({"message": "not found"}, 404)

            def _json(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def token_request_url(self) -> str:
        """What the runner puts in ACTIONS_ID_TOKEN_REQUEST_URL (it already carries a query string)."""
        return f"{self.issuer}/token?api-version=2.0"

    def github_job_env(self) -> dict[str, str]:
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": self.token_request_url,
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "LocalIssuer":
        return self.start() if self._server is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def github_claims(*, repository: str, ref: str, sha: str, actor: str, run_id: str, run_attempt: str = "1",
                  environment: str | None = None, workflow: str = "deploy.yml", event: str = "push",
                  protected: bool = True) -> dict[str, Any]:
    """A GitHub Actions job's claims, as the "OIDC token claims" reference lists them."""
    owner = repository.split("/")[0]
    workflow_ref = f"{repository}/.github/workflows/{workflow}@{ref}"
    sub = f"repo:{repository}:environment:{environment}" if environment else f"repo:{repository}:ref:{ref}"
    return {
        "sub": sub, "environment": environment, "ref": ref, "sha": sha, "repository": repository,
        "repository_owner": owner, "actor_id": "1001", "repository_visibility": "private", "repository_id": "74",
        "repository_owner_id": "65", "run_id": run_id, "run_number": "10", "run_attempt": run_attempt,
        "runner_environment": "github-hosted", "actor": actor, "workflow": workflow.rsplit(".", 1)[0],
        "head_ref": "", "base_ref": "", "event_name": event, "ref_type": "tag" if ref.startswith("refs/tags/")
        else "branch", "ref_protected": "true" if protected else "false", "workflow_ref": workflow_ref,
        "workflow_sha": sha, "job_workflow_ref": workflow_ref, "job_workflow_sha": sha,
    }


def gitlab_claims(*, project_path: str, ref: str, sha: str, user_login: str, user_email: str, pipeline_id: str,
                  job_id: str, environment: str | None = None, protected: bool = True,
                  host: str = "gitlab.example.com") -> dict[str, Any]:
    """A GitLab CI job's ``id_tokens`` claims, as "Token payload" in GitLab's ID token documentation lists them."""
    return {
        "namespace_id": "72", "namespace_path": project_path.rsplit("/", 1)[0], "project_id": "20",
        "project_path": project_path, "user_id": "1", "user_login": user_login, "user_email": user_email,
        "user_access_level": "maintainer", "pipeline_id": pipeline_id, "pipeline_source": "push", "job_id": job_id,
        "ref": ref, "ref_type": "branch", "ref_path": f"refs/heads/{ref}", "ref_protected": str(protected).lower(),
        "environment": environment, "environment_protected": "true" if environment else None,
        "deployment_tier": "production" if environment else None, "runner_id": 1,
        "runner_environment": "gitlab-hosted", "sha": sha, "project_visibility": "private",
        "ci_config_ref_uri": f"{host}/{project_path}//.gitlab-ci.yml@refs/heads/{ref}", "ci_config_sha": sha,
        "sub": f"project_path:{project_path}:ref_type:branch:ref:{ref}",
    }
