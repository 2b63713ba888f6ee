"""CI identity proven by the CI provider's OIDC ID token: the settings (``gate.oidc``), the verified facts of a token,
and the per-tier claim rules. Pure: the edge that obtains and verifies the token is ``ps019.oidc``.

Environment variables such as ``GITHUB_ACTIONS``, ``GITHUB_REF``, ``GITHUB_SHA`` and ``GITHUB_ACTOR`` describe a run;
anyone can set them on a laptop. An OIDC ID token is signed by the CI provider for one job, and names that job's
repository, ref, commit, workflow, environment, run and triggering actor. When a tier has OIDC rules
(``gate.oidc.rules.<tier>``), the gate takes all of those from the verified token and none from the environment.

Claim shapes (sources, recorded with the test fixtures in ``tests/data/oidc/``):

* GitHub Actions: https://docs.github.com/en/actions/reference/security/oidc ("OIDC token claims"):
  ``repository``, ``ref`` (``refs/heads/main``), ``ref_protected`` ("true"/"false"), ``sha``, ``actor``,
  ``environment``, ``workflow_ref`` / ``job_workflow_ref``, ``event_name``, ``run_id``, ``run_attempt``, ``jti``.
* GitLab CI ``id_tokens``: https://docs.gitlab.com/ci/secrets/id_token_authentication/ ("Token payload"):
  ``project_path``, ``ref`` + ``ref_type`` (and ``ref_path``), ``ref_protected``, ``sha``, ``user_login``,
  ``user_email``, ``environment``, ``ci_config_ref_uri``, ``pipeline_source``, ``pipeline_id``, ``job_id``, ``jti``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ps019.gate.ci import CiRun

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
DEFAULT_TOKEN_VARIABLE = "PS019_ID_TOKEN"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class GenericClaims(_Model):
    """Which claim holds which fact, for an issuer that is neither GitHub nor GitLab."""

    repository: str = Field("repository", description="claim naming the repository / project")
    ref: str = Field("ref", description="claim naming the git ref (refs/heads/... or a branch name)")
    ref_protected: str | None = Field(None, description="claim that is 'true' when the ref is protected")
    sha: str = Field("sha", description="claim naming the commit being built")
    actor: str = Field("actor", description="claim naming the person who triggered the job")
    environment: str | None = Field("environment", description="claim naming the deployment environment")
    workflow: str | None = Field("workflow", description="claim naming the pipeline definition")
    event: str | None = Field(None, description="claim naming what triggered the job")
    run_id: str = Field("run_id", description="claim naming the run (used against replay)")


class OidcIssuer(_Model):
    """One CI provider whose ID tokens the gate trusts, and how their signatures are checked."""

    name: str = Field(min_length=1, description="short name the rules refer to, e.g. github")
    issuer: str = Field(min_length=1, description="the exact `iss` claim, e.g. https://token.actions.githubusercontent.com")
    provider: Literal["github", "gitlab", "generic"] = Field(
        "generic", description="claim layout: github, gitlab, or generic (see `claims`)")
    audiences: list[str] = Field(min_length=1, description="accepted `aud` values; the first is requested from "
                                                           "GitHub's token endpoint")
    jwks: dict[str, Any] | None = Field(None, description="the issuer's JWKS, pinned in the pack config")
    jwks_file: str | None = Field(None, description="path of a pinned JWKS file (JSON)")
    discovery: bool = Field(False, description="also fetch the JWKS from the issuer's "
                                               "/.well-known/openid-configuration (https only; kept per process)")
    jwks_cache_seconds: int = Field(3600, ge=0, le=86400, description="how long a fetched JWKS is reused")
    algorithms: list[Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]] = Field(
        default_factory=lambda: ["RS256"], min_length=1, description="signature algorithms accepted (never none/HS*)")
    leeway_seconds: int = Field(60, ge=0, le=300, description="clock tolerance for exp, nbf and iat")
    max_lifetime_seconds: int = Field(86400, ge=60, le=7 * 86400, description="longest exp - iat accepted")
    server_url: str | None = Field(None, description="web URL of the CI server for run links (default: github.com "
                                                     "for GitHub, the issuer for GitLab)")
    claims: GenericClaims = Field(default_factory=GenericClaims, description="claim names for provider generic")
    repositories: list[str] = Field(
        default_factory=list, description="repository / project patterns whose tokens identify a person (deployer, "
                                          "break-glass operator) besides those the rules name; the issuer signs tokens "
                                          "for every repository on it, so no other repository's token counts")

    @field_validator("issuer")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an issuer URL")
        return value.rstrip("/") if value.count("/") > 2 else value

    @field_validator("jwks_file")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        # The engine runs the pack in the policy pack's directory, not where `pulumi up` was started: a relative
        # path would name one file for `ps019 oidc verify` and another (usually none) for the pack.
        if value is not None and not Path(value).expanduser().is_absolute():
            raise ValueError(f"jwksFile must be an absolute path, not {value!r}: the pack runs in the policy pack's "
                             "directory, not where `pulumi up` was started (or pin the keys inline with `jwks`)")
        return value

    @model_validator(mode="after")
    def _keys(self) -> "OidcIssuer":
        if not (self.jwks or self.jwks_file or self.discovery):
            raise ValueError(f"issuer {self.name}: give its keys (jwks, jwks_file) or enable discovery")
        return self


class ClaimRule(_Model):
    """What a verified token must say for a deployment of the tier. Patterns are fnmatch, case-sensitive. A rule
    matches when every field it sets matches; a tier is satisfied by any one of its rules."""

    issuer: str = Field(min_length=1, description="name of a configured issuer")
    repository: list[str] = Field(min_length=1, description="repository / project patterns (required: one issuer "
                                                            "signs tokens for every repository on it)")
    ref: list[str] = Field(default_factory=list, description="ref patterns, e.g. refs/heads/main, refs/tags/v*")
    ref_protected: bool | None = Field(None, description="require the provider's protected-ref flag")
    environment: list[str] = Field(default_factory=list, description="deployment environment patterns")
    workflow: list[str] = Field(default_factory=list, description="workflow patterns (GitHub job_workflow_ref, "
                                                                  "GitLab ci_config_ref_uri)")
    event: list[str] = Field(default_factory=list, description="trigger patterns (GitHub event_name, GitLab "
                                                               "pipeline_source)")
    claims: dict[str, list[str]] = Field(default_factory=dict, description="other claim name -> patterns")


class TokenSource(_Model):
    """Where the pack (running inside the CI job) finds the job's ID token, in this order."""

    variable: str = Field(DEFAULT_TOKEN_VARIABLE, description="environment variable holding the token (GitLab: "
                                                              "the id_tokens: name)")
    file: str | None = Field(None, description="file holding the token (generic issuers)")
    github: bool = Field(True, description="request one with ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN (GitHub Actions "
                                           "with `permissions: id-token: write`)")


class OidcSettings(_Model):
    """``gate.oidc``: trusted CI issuers, where the token comes from, and per-tier claim rules."""

    issuers: list[OidcIssuer] = Field(default_factory=list, description="CI providers whose ID tokens are trusted")
    rules: dict[str, list[ClaimRule]] = Field(default_factory=dict, description="tier -> claim rules; a tier "
                                              "listed here requires a verified token, and env vars never count")
    token: TokenSource = Field(default_factory=TokenSource, description="where the job's token is found")
    replay_protection: bool = Field(True, description="refuse a token (jti) or run already recorded on an update "
                                                      "of the stack (needs the evidence store)")

    @model_validator(mode="after")
    def _references(self) -> "OidcSettings":
        names = [i.name for i in self.issuers]
        if len(set(names)) != len(names):
            raise ValueError("issuers: names must be unique")
        for tier, rules in self.rules.items():
            for i, rule in enumerate(rules):
                if rule.issuer not in names:
                    raise ValueError(f"rules.{tier}[{i}].issuer: {rule.issuer!r} is not a configured issuer")
        return self

    def repository_problem(self, identity: "CiIdentity") -> str | None:
        """Why a verified token names nobody the gate may trust: an issuer such as GitHub's signs tokens for every
        repository on it, and any workflow may request any audience, so a token's ``actor`` is only whoever started
        a run somewhere. Only a repository that one of the rules names (for the token's issuer, in any tier) runs
        jobs whose actor identifies a deployer or a break-glass operator (and the issuer's own ``repositories``)."""
        if not identity.verified:
            return None
        issuer = self.issuer_named(identity.issuer_name or "")
        patterns = list(issuer.repositories if issuer else []) + [
            p for rules in self.rules.values() for rule in rules if rule.issuer == identity.issuer_name
            for p in rule.repository]
        if _matches(identity.repository, patterns):
            return None
        return (f"the ID token is from repository {identity.repository or '(none)'}, which no gate.oidc rule names for "
                f"issuer {identity.issuer_name} (the issuer signs tokens for every repository on it, so its actor "
                f"identifies nobody here); configured: {sorted(set(patterns)) or 'no repository'} (gate.oidc.rules, "
                f"gate.oidc.issuers[].repositories)")

    def issuer_named(self, name: str) -> OidcIssuer | None:
        return next((i for i in self.issuers if i.name == name), None)

    def issuer_for(self, iss: str) -> OidcIssuer | None:
        return next((i for i in self.issuers if i.issuer == iss), None)


# --- verified facts -------------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    return str(value).strip().lower() == "true"


@dataclass(frozen=True)
class CiIdentity:
    """The outcome of obtaining and verifying the job's ID token. ``verified`` is False with ``problem`` set when
    there was no token or it did not verify; every other field then is None."""

    verified: bool
    problem: str | None = None
    source: str | None = None  # where the token came from (never the token)
    issuer_name: str | None = None
    issuer: str | None = None
    provider: str | None = None
    subject: str | None = None
    repository: str | None = None
    ref: str | None = None
    ref_protected: bool | None = None
    sha: str | None = None
    actor: str | None = None
    actor_names: tuple[str, ...] = ()  # other names of the actor in the token (GitLab user_email)
    environment: str | None = None
    workflow: str | None = None
    event: str | None = None
    run_id: str | None = None
    run_attempt: str | None = None
    run_url: str | None = None
    jti: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    replay_problem: str | None = None  # set by the edge that asks the evidence store

    @property
    def run_key(self) -> str | None:
        """The run, as recorded in ``ci.run_id`` of the evidence record (with the attempt when there is one)."""
        if not self.run_id:
            return None
        return f"{self.run_id}/{self.run_attempt}" if self.run_attempt else self.run_id

    def ci_run(self) -> CiRun:
        return CiRun(provider=self.provider or "generic", run_url=self.run_url, ref=self.ref, commit=self.sha,
                     actor=self.actor, protected=self.ref_protected, repository=self.repository, event=self.event)

    def evidence(self) -> dict[str, Any]:
        """What the record keeps: the verified claims (an ID token's claims are not secret; the token is never
        kept), where the token came from, and why it did not count."""
        return {
            "verified": self.verified, "problem": self.problem, "replay_problem": self.replay_problem,
            "source": self.source, "issuer": self.issuer, "issuer_name": self.issuer_name, "subject": self.subject,
            "jti": self.jti, "run": self.run_key, "repository": self.repository, "ref": self.ref, "sha": self.sha,
            "actor": self.actor, "environment": self.environment, "workflow": self.workflow,
            "claims": dict(self.claims),
        }


def unverified(problem: str, source: str | None = None) -> CiIdentity:
    return CiIdentity(verified=False, problem=problem, source=source)


def _ref_of(provider: str, claims: Mapping[str, Any], generic: GenericClaims) -> str | None:
    if provider == "gitlab":
        if claims.get("ref_path"):
            return _text(claims["ref_path"])
        ref = _text(claims.get("ref"))
        if not ref:
            return None
        return ref if ref.startswith("refs/") else (
            f"refs/tags/{ref}" if claims.get("ref_type") == "tag" else f"refs/heads/{ref}")
    ref = _text(claims.get("ref" if provider == "github" else generic.ref))
    if ref and provider == "generic" and not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    return ref


def identity_from_claims(issuer: OidcIssuer, claims: Mapping[str, Any], source: str) -> CiIdentity:
    """The CI facts a verified token states, read with the provider's documented claim names."""
    provider = issuer.provider
    generic = issuer.claims
    g = claims.get
    if provider == "github":
        repository, sha, actor = _text(g("repository")), _text(g("sha")), _text(g("actor"))
        names: tuple[str, ...] = ()
        environment, event = _text(g("environment")), _text(g("event_name"))
        workflow = _text(g("job_workflow_ref")) or _text(g("workflow_ref"))
        run_id, attempt, protected = _text(g("run_id")), _text(g("run_attempt")), _flag(g("ref_protected"))
        server = (issuer.server_url or "https://github.com").rstrip("/")
        run_url = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None
        if run_url and attempt:
            run_url += f"/attempts/{attempt}"
    elif provider == "gitlab":
        repository, sha, actor = _text(g("project_path")), _text(g("sha")), _text(g("user_login"))
        names = tuple(n for n in (_text(g("user_email")),) if n)
        environment, event = _text(g("environment")), _text(g("pipeline_source"))
        workflow = _text(g("ci_config_ref_uri"))
        run_id, attempt, protected = _text(g("pipeline_id")), _text(g("job_id")), _flag(g("ref_protected"))
        server = (issuer.server_url or issuer.issuer).rstrip("/")
        run_url = f"{server}/{repository}/-/jobs/{attempt}" if repository and attempt else None
    else:
        repository, sha, actor = _text(g(generic.repository)), _text(g(generic.sha)), _text(g(generic.actor))
        names = ()
        environment = _text(g(generic.environment)) if generic.environment else None
        workflow = _text(g(generic.workflow)) if generic.workflow else None
        event = _text(g(generic.event)) if generic.event else None
        run_id, attempt = _text(g(generic.run_id)), None
        protected = _flag(g(generic.ref_protected)) if generic.ref_protected else None
        run_url = None
    return CiIdentity(
        verified=True, source=source, issuer_name=issuer.name, issuer=issuer.issuer, provider=provider,
        subject=_text(g("sub")), repository=repository, ref=_ref_of(provider, claims, generic),
        ref_protected=protected, sha=(sha or "").lower() or None, actor=actor, actor_names=names,
        environment=environment, workflow=workflow, event=event, run_id=run_id, run_attempt=attempt,
        run_url=run_url, jti=_text(g("jti")),
        issued_at=_time(g("iat")), expires_at=_time(g("exp")), claims=dict(claims),
    )


def _time(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


# --- the rules ------------------------------------------------------------------------------------------------------


def _matches(value: str | None, patterns: list[str]) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _rule_mismatches(identity: CiIdentity, rule: ClaimRule) -> list[str]:
    out = []
    if identity.issuer_name != rule.issuer:
        return [f"issuer {identity.issuer_name} is not {rule.issuer}"]
    for label, value, patterns in (("repository", identity.repository, rule.repository),
                                   ("ref", identity.ref, rule.ref),
                                   ("environment", identity.environment, rule.environment),
                                   ("workflow", identity.workflow, rule.workflow),
                                   ("event", identity.event, rule.event)):
        if patterns and not _matches(value, patterns):
            out.append(f"{label} {value or '(none)'} is not one of {patterns}")
    if rule.ref_protected is not None and identity.ref_protected is not rule.ref_protected:
        out.append(f"ref_protected is {identity.ref_protected}, not {rule.ref_protected}")
    for name, patterns in rule.claims.items():
        value = _text(identity.claims.get(name))
        if not _matches(value, patterns):
            out.append(f"claim {name}={value or '(none)'} is not one of {patterns}")
    return out


def rule_problems(identity: CiIdentity | None, rules: list[ClaimRule]) -> list[str]:
    """[] when the verified token satisfies one of ``rules``; otherwise why not (one line per rule)."""
    if identity is None:
        return ["no CI OIDC ID token was presented"]
    if not identity.verified:
        return [f"the CI OIDC ID token does not count: {identity.problem}"]
    if identity.replay_problem:
        return [f"the CI OIDC ID token does not count: {identity.replay_problem}"]
    reasons = []
    for i, rule in enumerate(rules):
        mismatches = _rule_mismatches(identity, rule)
        if not mismatches:
            return []
        reasons.append(f"rule {i + 1}: " + ", ".join(mismatches))
    return [f"the CI OIDC ID token ({identity.issuer_name}, {identity.repository} {identity.ref}) matches no rule "
            f"for this tier: " + "; ".join(reasons)]
