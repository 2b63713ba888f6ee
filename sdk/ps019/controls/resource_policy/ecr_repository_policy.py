"""PS019-RBP-002: ECR repository policies grant no public or unbounded cross-account pushes or policy changes."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.resource_policy._common import CLAUSE, CONFIG_MODEL, check_documents
from ps019.model import Level, ResourceView, Severity, Violation

DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:ecr/repositoryPolicy:RepositoryPolicy": (("policy",),),
    "aws:ecrpublic/repositoryPolicy:RepositoryPolicy": (("policy",),),
    "aws-native:ecr:Repository": (("repositoryPolicyText",),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    yield from check_documents(view, ctx, params, DOCUMENT_PATHS)


CONTROL = Control(
    id="PS019-RBP-002",
    title="ECR repository policies grant no public or cross-account pushes or policy changes",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A repository policy with Principal '*' and push, delete or SetRepositoryPolicy lets anyone replace the "
        "images your workloads run, delete the repository or rewrite who may do so; another account with write "
        "access can do the same."
    ),
    remediation=(
        "Grant pulls (ecr:BatchGetImage, ecr:GetDownloadUrlForLayer) to named accounts or bound them with "
        "aws:PrincipalOrgID; keep pushes and policy changes in the owning account's deploy role."
    ),
    resource_types=tuple(DOCUMENT_PATHS),
    config_model=CONFIG_MODEL,
    check=check,
)
