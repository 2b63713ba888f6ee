"""Attack: a stack export (or program) with no ``pulumi:pulumi:Stack`` resource. The gate controls used to run only on
that resource, so the offline CLI analysed every resource of an unapproved production update and recorded it as
succeeded. Now the decision is reported on the run's first analyzed resource, else at AnalyzeStack (PS019-GATE-008):
a production run never proceeds without a gate decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ps019.engine import StackRef, load_stack_export, run_pass

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "examples" / "web-service" / "stack-export.prod.json"
STACK = "acme/web-service/prod"


@pytest.fixture
def pack_config(tmp_path):
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps({"ps019-settings": {"identity": {"lookup": "off"}}}))
    return path


@pytest.fixture
def rootless_export(tmp_path):
    document = json.loads(EXPORT.read_text())
    resources = document["deployment"]["resources"]
    document["deployment"]["resources"] = [r for r in resources if r["type"] != "pulumi:pulumi:Stack"]
    for r in document["deployment"]["resources"]:
        r.pop("parent", None)
    path = tmp_path / "rootless.json"
    path.write_text(json.dumps(document))
    return path


def test_an_update_without_a_root_stack_resource_is_blocked_at_its_first_resource(rootless_export, ps019_pack,
                                                                                  pack_pool, pack_config):
    export = load_stack_export(rootless_export, StackRef.parse(STACK))
    assert export.resources and all(r.type != "pulumi:pulumi:Stack" for r in export.resources)
    result = run_pass(ps019_pack, export, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    first = export.resources[0].urn
    assert result.blocked_at == first and result.analyzed_urns == [first]
    gate = [d for d in result.diagnostics if d.policy_name == "PS019-GATE-001" and d.mandatory]
    assert gate, [d.policy_name for d in result.diagnostics]


def test_the_offline_cli_refuses_an_unapproved_rootless_production_update(rootless_export, pack_config):
    from ps019.cli.analyze import run_analysis

    report = run_analysis(state=str(rootless_export), stack=STACK, mode="update", policy_pack_config=str(pack_config))
    update = report["passes"][0]
    assert update["blocked_at"] and update["resources_analyzed"] == 1
    assert report["result"] != "passed"
    assert any(d["policy"] == "PS019-GATE-001" and d["level"] == "mandatory" for d in update["diagnostics"])


def test_a_run_in_which_no_resource_was_analyzed_gets_the_decision_at_analyze_stack(ps019_pack, pack_pool,
                                                                                    pack_config):
    result = run_pass(ps019_pack, [], stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    decided = [d for d in result.diagnostics if d.policy_name == "PS019-GATE-008" and d.mandatory]
    assert decided and any("PS019-GATE-001" in d.message for d in decided)


def test_a_preview_reports_the_decision_once_on_the_first_resource(rootless_export, ps019_pack, pack_pool,
                                                                    pack_config):
    export = load_stack_export(rootless_export, StackRef.parse(STACK))
    result = run_pass(ps019_pack, export, stack=STACK, dry_run=True, policy_pack_config=pack_config, pool=pack_pool)
    carriers = {d.urn for d in result.diagnostics if d.policy_name.startswith("PS019-GATE-00")}
    assert carriers == {export.resources[0].urn}
    assert not [d for d in result.diagnostics if d.policy_name == "PS019-GATE-008"]
