"""Facts about the CI run and the artifact, read from the environment the pack inherits from the Pulumi CLI.

Every value here is an environment variable, which anyone can set on a laptop: they describe the run, they do not
prove it. The approved-path rule therefore also checks the deploy identity verified with STS (see ``ps019.gate.
settings.ApprovedPath``). ``detect_ci`` is pure over a mapping; ``plan_digest_from_env`` is the one small file read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

COMMIT_ENV = "PS019_GIT_COMMIT"
PLAN_ENV = "PS019_PLAN_FILE"
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True)
class CiRun:
    provider: str  # github | gitlab | buildkite | circleci | jenkins | azure-pipelines | bitbucket | generic
    run_url: str | None = None
    ref: str | None = None  # always in refs/heads/... or refs/tags/... form when the provider tells us
    commit: str | None = None
    actor: str | None = None
    protected: bool | None = None  # the provider's own "protected ref" flag, when it has one
    repository: str | None = None
    event: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes"}


def _flag(value: str | None) -> bool | None:
    return None if value is None else _true(value)


def _branch_ref(branch: str | None, tag: str | None = None) -> str | None:
    if tag:
        return tag if tag.startswith("refs/") else f"refs/tags/{tag}"
    if branch:
        branch = branch.removeprefix("origin/")
        return branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    return None


def detect_ci(env: Mapping[str, str]) -> CiRun | None:
    """Which CI system (if any) this process runs under, from its documented environment variables."""
    g = env.get
    if _true(g("GITHUB_ACTIONS")):
        server, repo, run_id = g("GITHUB_SERVER_URL", "https://github.com"), g("GITHUB_REPOSITORY"), g("GITHUB_RUN_ID")
        return CiRun(
            provider="github",
            run_url=f"{server}/{repo}/actions/runs/{run_id}" if repo and run_id else None,
            ref=g("GITHUB_REF"),
            commit=g("GITHUB_SHA"),
            actor=g("GITHUB_TRIGGERING_ACTOR") or g("GITHUB_ACTOR"),
            protected=_flag(g("GITHUB_REF_PROTECTED")),
            repository=repo,
            event=g("GITHUB_EVENT_NAME"),
        )
    if _true(g("GITLAB_CI")):
        return CiRun(
            provider="gitlab",
            run_url=g("CI_JOB_URL") or g("CI_PIPELINE_URL"),
            ref=_branch_ref(g("CI_COMMIT_BRANCH") or g("CI_COMMIT_REF_NAME"), g("CI_COMMIT_TAG")),
            commit=g("CI_COMMIT_SHA"),
            actor=g("GITLAB_USER_LOGIN"),
            protected=_flag(g("CI_COMMIT_REF_PROTECTED")),
            repository=g("CI_PROJECT_PATH"),
            event=g("CI_PIPELINE_SOURCE"),
        )
    if _true(g("BUILDKITE")):
        return CiRun("buildkite", g("BUILDKITE_BUILD_URL"), _branch_ref(g("BUILDKITE_BRANCH"), g("BUILDKITE_TAG")),
                     g("BUILDKITE_COMMIT"), g("BUILDKITE_BUILD_CREATOR_EMAIL"), None, g("BUILDKITE_REPO"),
                     g("BUILDKITE_SOURCE"))
    if _true(g("CIRCLECI")):
        return CiRun("circleci", g("CIRCLE_BUILD_URL"), _branch_ref(g("CIRCLE_BRANCH"), g("CIRCLE_TAG")),
                     g("CIRCLE_SHA1"), g("CIRCLE_USERNAME"), None, g("CIRCLE_PROJECT_REPONAME"))
    if g("TF_BUILD", "").lower() == "true":
        collection, project, build = g("SYSTEM_COLLECTIONURI"), g("SYSTEM_TEAMPROJECT"), g("BUILD_BUILDID")
        url = f"{collection.rstrip('/')}/{project}/_build/results?buildId={build}" if collection and build else None
        return CiRun("azure-pipelines", url, _branch_ref(g("BUILD_SOURCEBRANCH")), g("BUILD_SOURCEVERSION"),
                     g("BUILD_REQUESTEDFOREMAIL"), None, g("BUILD_REPOSITORY_NAME"), g("BUILD_REASON"))
    if g("BITBUCKET_BUILD_NUMBER"):
        repo = g("BITBUCKET_REPO_FULL_NAME")
        url = f"https://bitbucket.org/{repo}/pipelines/results/{g('BITBUCKET_BUILD_NUMBER')}" if repo else None
        return CiRun("bitbucket", url, _branch_ref(g("BITBUCKET_BRANCH"), g("BITBUCKET_TAG")), g("BITBUCKET_COMMIT"),
                     g("BITBUCKET_STEP_TRIGGERER_UUID"), None, repo)
    if g("JENKINS_URL"):
        return CiRun("jenkins", g("BUILD_URL"), _branch_ref(g("GIT_BRANCH") or g("BRANCH_NAME"), g("TAG_NAME")),
                     g("GIT_COMMIT"), g("BUILD_USER_ID"), None, g("GIT_URL"))
    if _true(g("CI")):
        return CiRun("generic", g("CI_RUN_URL"), g("CI_REF"), g("CI_COMMIT"), g("CI_ACTOR"))
    return None


@dataclass(frozen=True)
class ArtifactFacts:
    commit: str | None
    source: str  # where the commit came from
    problem: str | None = None  # set when the sources disagree or a value is malformed


def artifact_commit(env: Mapping[str, str], ci: CiRun | None) -> ArtifactFacts:
    """The git commit this run deploys: ``PS019_GIT_COMMIT`` (e.g. ``git rev-parse HEAD`` in the deploy job), else
    the CI system's commit. If both are set and disagree the artifact is ambiguous, which is a problem, not a guess."""
    explicit = (env.get(COMMIT_ENV) or "").strip().lower() or None
    from_ci = (ci.commit or "").strip().lower() or None if ci else None
    if explicit and not _COMMIT.match(explicit):
        return ArtifactFacts(None, f"env {COMMIT_ENV}", f"{COMMIT_ENV}={explicit!r} is not a full git commit SHA")
    if explicit and from_ci and explicit != from_ci:
        return ArtifactFacts(explicit, f"env {COMMIT_ENV}",
                             f"{COMMIT_ENV}={explicit} disagrees with the CI commit {from_ci}: the artifact is ambiguous")
    if explicit:
        return ArtifactFacts(explicit, f"env {COMMIT_ENV}")
    if from_ci:
        return ArtifactFacts(from_ci, f"{ci.provider} CI commit")
    return ArtifactFacts(None, "unknown")


@dataclass(frozen=True)
class PlanFacts:
    digest: str | None  # "sha256:<hex>"
    path: str | None = None
    problem: str | None = None
    data: bytes | None = None  # the file's bytes: the gate parses the plan it binds (ps019.gate.plan)


def plan_digest_from_env(env: Mapping[str, str]) -> PlanFacts:
    """sha256 of the ``pulumi preview --save-plan`` file named by ``PS019_PLAN_FILE`` (the pack's one file read here)."""
    path = env.get(PLAN_ENV)
    if not path:
        return PlanFacts(None)
    file = Path(path)
    if not file.is_absolute():
        file = Path(env.get("PWD") or ".") / file
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return PlanFacts(None, str(file), f"{PLAN_ENV}={path}: no such file")
    except OSError as exc:
        return PlanFacts(None, str(file), f"{PLAN_ENV}={path}: cannot read ({exc.strerror})")
    return PlanFacts("sha256:" + hashlib.sha256(data).hexdigest(), str(file), data=data)
