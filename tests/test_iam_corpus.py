"""Real public programs and policies (tests/data/iam/corpus/): what each grants, with a hand-judged verdict, and
ps019's verdict on it. The known disagreements are listed here with the reason; docs/benchmarks.md counts them as
ps019's false positives and false negatives beside the peers'. A change that fixes one must move it out of the list
(the test fails when a listed disagreement no longer disagrees), and a change that adds one fails the test."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
try:
    import iam_corpus
finally:
    sys.path.pop(0)

PERMISSIVE = {"Apache-2.0", "MIT", "MIT-0", "BSD-2-Clause", "BSD-3-Clause"}
GRANTS = list(iam_corpus.grants())

# ps019 verdict differs from the hand verdict (FP: ps019 denies what a reviewer allows; FN: the reverse), with the
# reason. Empty since AWS-designed service access (the 11 service-role FPs: ps019.iam.service_roles, with each managed
# grant's role trust) and invocation on "*" (the FN: knowledge.EXECUTION_ACTIONS) are judged.
KNOWN_DISAGREEMENTS: dict[str, str] = {}


def test_at_least_thirty_real_sources_each_with_provenance_and_a_permissive_licence():
    sources = iam_corpus.sources()
    assert len(sources) >= 30
    for path, data in sources:
        src = data["source"]
        assert src["licence"] in PERMISSIVE, path
        assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]), path
        assert src["repository"].count("/") == 1 and src["path"], path
        assert src["url"] == f"https://github.com/{src['repository']}/blob/{src['commit']}/{src['path']}", path
        assert data["grants"], path


def test_every_grant_is_hand_judged_and_usable():
    kinds = set()
    for gid, grant, _ in GRANTS:
        assert grant["expected"] in ("allow", "deny") and grant["why"], gid
        kinds.add(grant["kind"])
        assert ("policy_arn" in grant) == (grant["kind"] == "managed"), gid
    assert kinds == {"identity", "trust", "resource", "managed"}


@pytest.mark.parametrize("gid,grant", [(g, gr) for g, gr, _ in GRANTS], ids=[g for g, _, _ in GRANTS])
def test_ps019_verdict_matches_the_hand_verdict(gid, grant):
    verdict, messages = iam_corpus.ps019_verdict(grant)
    assert verdict != "error", messages
    if gid in KNOWN_DISAGREEMENTS:
        assert verdict != grant["expected"], f"{gid} now agrees: remove it from KNOWN_DISAGREEMENTS"
    else:
        assert verdict == grant["expected"], (grant["why"], messages)


def test_every_role_trust_names_a_trust_grant_of_the_same_program():
    for path, data in iam_corpus.sources():
        trusts = {g["id"] for g in data["grants"] if g["kind"] == "trust"}
        for grant in data["grants"]:
            if "role_trust" in grant:
                assert grant["kind"] == "managed" and grant["role_trust"] in trusts, (path.name, grant["id"])
            if "role_trust_document" in grant:
                assert grant["kind"] == "managed" and grant["role_trust_from"], (path.name, grant["id"])


def test_service_role_policies_are_judged_by_the_role_they_reach():
    """The corpus' AWS service-role policies pass on their services' roles; the same policies attached to a role that
    an account (people, CI) can assume are denied, as are policies given to another service's role."""
    by_id = {gid: grant for gid, grant, _ in GRANTS}
    human = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}
    for gid in ("pulumi__examples__aws-cs-eks/eks-cluster-policy", "pulumi__examples__aws-go-eks/cni",
                "pulumi__examples__aws-ts-lambda-efs/vpc-access",
                "pulumi__examples__aws-ts-localai-flowise/ebs-csi-driver",
                "pulumi__examples__aws-ts-redshift-glue-etl/glue-service-role"):
        grant = by_id[gid]
        assert iam_corpus.ps019_verdict(grant)[0] == "allow", gid
        assert iam_corpus.ps019_verdict({**grant, "role_trust_document": human})[0] == "deny", gid
        assert iam_corpus.ps019_verdict({k: v for k, v in grant.items() if k != "role_trust_document"})[0] == "deny"
    lambda_trust = by_id["pulumi__examples__aws-ts-lambda-efs/vpc-access"]["role_trust_document"]
    glue = by_id["pulumi__examples__aws-ts-redshift-glue-etl/glue-service-role"]
    assert iam_corpus.ps019_verdict({**glue, "role_trust_document": lambda_trust})[0] == "deny"


def test_disagreement_list_names_real_grants():
    assert set(KNOWN_DISAGREEMENTS) <= {g for g, _, _ in GRANTS}
