"""Node.js packs beside ps019 (issue 9, "Several packs, Node packs too"): `ps019 analyze` takes several
--policy-pack flags, like the CLI, and runs a Node pack (Pulumi's AWSGuard) through @pulumi/pulumi's policy-pack
runner. The packs share one pass; the output shows both packs' results."""

from __future__ import annotations

import pytest

from ps019.engine import StackRef, load_stack_export
from ps019.engine.runner import run_passes, run_policy_analyze

EXPORT = "examples/web-service/stack-export.prod.json"

pytestmark = pytest.mark.slow


def test_awsguard_beside_ps019_in_one_pass(ps019_pack, awsguard_pack, capsys):
    from ps019.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--state", EXPORT, "--stack", "acme/web-service/prod", "--policy-pack", str(ps019_pack),
              "--policy-pack", str(awsguard_pack), "--format", "json"])
    import json

    report = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 1
    packs = [p["pack"]["name"] for p in report["passes"]]
    assert packs == ["ps019", "pulumi-awsguard"]
    awsguard = report["passes"][1]
    assert awsguard["resources_analyzed"] == report["passes"][0]["resources_analyzed"]
    assert awsguard["diagnostics"], "AWSGuard found nothing on the example stack"
    assert all(d["pack"] == "pulumi-awsguard" for d in awsguard["diagnostics"])
    assert awsguard["compliance"]["passed"] > 0


def test_node_pack_sees_the_stack_from_configure_stack_and_runs_under_policy_analyze(awsguard_pack):
    stack = StackRef.parse("acme/web-service/prod")
    resources = load_stack_export(EXPORT, stack).resources
    [deployment] = run_passes([awsguard_pack], resources, stack=stack, dry_run=True)
    [analysis] = run_policy_analyze([awsguard_pack], resources, stack=stack)
    assert deployment.runtime == "nodejs" and deployment.pack_version == "0.3.1"
    assert analysis.mode == "analyze"
    assert {(d.urn, d.policy_name) for d in deployment.diagnostics} == {(d.urn, d.policy_name)
                                                                        for d in analysis.diagnostics}
