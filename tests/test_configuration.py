"""The documented example configuration is valid, and the pack accepts it without a settings violation."""

from __future__ import annotations

import json
from pathlib import Path

from ps019.controls.registry import all_controls
from ps019.engine import EngineResource, StackRef, load_policy_pack_config, run_pass
from ps019.pack.settings import SETTINGS_POLICY, Settings

EXAMPLE = Path(__file__).resolve().parents[1] / "policypacks" / "ps019" / "config.example.json"


def test_example_config_is_valid_and_names_only_real_controls():
    config = json.loads(EXAMPLE.read_text())
    assert Settings(raw=config[SETTINGS_POLICY]).validate_all() == {}
    ids = {c.id for c in all_controls()}
    assert set(config) - {SETTINGS_POLICY, "all"} <= ids
    load_policy_pack_config(EXAMPLE)  # the engine's own parsing of the file


def test_the_pack_runs_with_the_example_config_without_a_settings_violation(ps019_pack, pack_pool, ps019_home):
    config = json.loads(EXAMPLE.read_text())
    # Keep the run on this machine: the example points at S3 and /var/log.
    settings = config[SETTINGS_POLICY]
    settings["evidence"] = {"store_url": f"sqlite:///{ps019_home}/evidence.db"}
    settings["log"] = {"file": str(ps019_home / "decisions.jsonl")}
    stack = StackRef.parse("acme/config-example/dev")
    resources = [EngineResource(urn=stack.root_urn, type="pulumi:pulumi:Stack", custom=False)]
    result = run_pass(ps019_pack, resources, stack=stack, dry_run=True, pool=pack_pool, policy_pack_config=config)
    assert not [d for d in result.diagnostics if d.policy_name in ("PS019-PACK-001", "PS019-PACK-000")]
    levels = {p.name: p.level for p in result.policies}
    assert levels["PS019-IAM-005"].value == "advisory"  # the pack's default; the file raises it per run
