"""The IAM and resource-policy controls on the real programs of tests/corpus/programs, against hand-judged verdicts
(``iam-verdicts.json`` beside each program that creates IAM or resource policies; tests/corpus/iam_verdicts.py).
The pack runs through the engine stand-in in preview and update mode; a false negative, false positive, missed
advisory or unjudged mandatory finding fails the test unless it is listed below with its reason. docs/benchmarks.md
gives the counts (`python -m tests.corpus.iam_verdicts --jobs 2`)."""

from __future__ import annotations

import pytest

from ps019.controls.registry import all_controls
from tests.corpus.iam_verdicts import PROBLEMS, classify, compare, judged_programs, run, summary

# "<slug> <mode> <type>::<name> <control>[ at <path>]" -> why ps019 and the hand verdict disagree. Empty: ps019 agrees
# on every judged resource of every program in both modes.
KNOWN_DISAGREEMENTS: dict[str, str] = {}

CONTROLS = {c.id: c for c in all_controls() if c.id.startswith(("PS019-IAM-", "PS019-RBP-"))}


def test_every_verdict_file_is_well_formed_and_names_controls_that_apply():
    judged = judged_programs()
    assert len(judged) >= 15
    for slug, meta, verdicts in judged:
        assert verdicts["judged_by"] and verdicts["verdicts"], slug
        assert meta.get("expect", "analyses") == "analyses", f"{slug}: a broken program cannot be judged"
        seen = set()
        for entry in verdicts["verdicts"]:
            assert set(entry) <= {"resource", "control", "at", "expected", "why"}, (slug, entry)
            rtype, _, name = entry["resource"].partition("::")
            assert name and entry["why"] and entry["expected"] in ("deny", "advisory", "allow"), (slug, entry)
            assert CONTROLS[entry["control"]].applies_to(rtype), (slug, entry)
            key = (entry["resource"], entry["control"], entry.get("at", ""))
            assert key not in seen, (slug, key)
            seen.add(key)


def _diag(urn: str, policy: str, level: str, message: str) -> dict:
    return {"urn": urn, "policy": policy, "level": level, "message": message}


def test_comparison_counts_misses_false_alarms_deferrals_and_unjudged_findings():
    role = "urn:pulumi:dev::p::aws:iam/role:Role::r"
    attach = "urn:pulumi:dev::p::aws:iam/role:Role$aws:iam/rolePolicyAttachment:RolePolicyAttachment::a"
    verdicts = {"verdicts": [
        {"resource": "aws:iam/role:Role::r", "control": "PS019-IAM-003", "at": "managedPolicyArns[0]",
         "expected": "deny", "why": "x"},
        {"resource": "aws:iam/role:Role::r", "control": "PS019-IAM-003", "at": "managedPolicyArns[1]",
         "expected": "allow", "why": "x"},
        {"resource": "aws:iam/role:Role::r", "control": "PS019-IAM-002", "expected": "deny", "why": "x"},
    ]}
    passes = [{"pack": {"name": "ps019"}, "analyzed_urns": [role, attach], "policies": [], "diagnostics": [
        _diag(role, "PS019-IAM-003", "advisory", "... at 'managedPolicyArns[0]' cannot be verified until update"),
        _diag(role, "PS019-IAM-003", "mandatory", "... at 'managedPolicyArns[1]'; the policy grants ..."),
        _diag(attach, "PS019-IAM-003", "mandatory", "... at 'policyArn' ..."),
    ]}]
    got = {(o.control, o.at): o.outcome for o in compare("s", "preview", verdicts, passes)}
    assert got == {("PS019-IAM-003", "managedPolicyArns[0]"): "deferred",
                   ("PS019-IAM-003", "managedPolicyArns[1]"): "false positive",
                   ("PS019-IAM-002", ""): "false negative",
                   ("PS019-IAM-003", ""): "unjudged"}
    update = {(o.control, o.at): o.outcome for o in compare("s", "update", verdicts, passes)}
    assert update[("PS019-IAM-003", "managedPolicyArns[0]")] == "false negative"  # nothing is deferred any more
    blocked = [{**passes[0], "analyzed_urns": [], "diagnostics": []}]
    assert {o.outcome for o in compare("s", "update", verdicts, blocked)} == {"not reached"}
    assert classify("advisory", "allow", "preview") == "advisory differs"
    assert classify("allow", "advisory", "update") == "agree"  # allow = must not block


@pytest.mark.slow
def test_the_pack_agrees_with_the_hand_verdicts_on_real_programs_in_preview_and_update():
    outcomes = run(["preview", "update"], jobs=2)
    problems = {o.key: f"{o.outcome}: expected {o.expected}, ps019 {o.observed}: {o.message}" for o in outcomes
                if o.outcome in PROBLEMS}
    new = {k: v for k, v in problems.items() if k not in KNOWN_DISAGREEMENTS}
    assert not new, "\n".join(f"{k}\n    {v}" for k, v in new.items())
    fixed = set(KNOWN_DISAGREEMENTS) - set(problems)
    assert not fixed, f"now agree, remove from KNOWN_DISAGREEMENTS: {sorted(fixed)}"
    # Every entry names a resource the program really creates (a preview analyses every resource).
    assert not [o.key for o in outcomes if o.mode == "preview" and o.outcome == "not reached"]
    preview = summary(outcomes, "preview")
    assert preview["deny entries"] >= 8 and preview["allow/advisory entries"] >= 40
