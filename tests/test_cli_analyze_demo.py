"""`ps019 demo`, the README's main command: six stories through the real pack, each checked from the demo's own
structured outcome (``--json-result``), plus what a user relies on around it: exit status, no secrets in the output,
the user's store untouched by the tamper test, and a second run on the same store still passing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ps019.cli.demo import DEMO_SECRET_CONFIG, OPERATOR, REVIEWER

STORY_IDS = ["over-privileged-role", "unapproved-production", "development", "approved-production", "break-glass",
             "auditor"]


def _run_demo(tmp: Path, name: str) -> dict:
    env = dict(os.environ)
    env.update({
        "XDG_DATA_HOME": str(tmp / "data"),  # the default evidence signing key and the demo work dir live here
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # the demo must drop it for its packs
        "AWS_EC2_METADATA_DISABLED": "true",
        # As when scripts/test runs in GitHub Actions: the demo's stories must not inherit the outer CI's markers.
        "GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_ACTOR": "outer-ci",
        "GITHUB_SHA": "0" * 40, "PS019_CHANGE_REQUEST": str(tmp / "not-this-one.json"),
    })
    result_path = tmp / f"{name}.json"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ps019.cli", "demo", "--store", f"sqlite:///{tmp / 'evidence.db'}",
                           "--json-result", str(result_path)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    elapsed = time.monotonic() - started
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    return {"proc": proc, "result": result, "elapsed": elapsed, "out": proc.stdout, "err": proc.stderr}


@pytest.fixture(scope="module")
def demo_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def first_run(demo_tmp) -> dict:
    return _run_demo(demo_tmp, "first")


def _story(run: dict, story_id: str) -> dict:
    return next(s for s in run["result"]["stories"] if s["id"] == story_id)


def test_demo_exits_0_and_every_story_behaves_as_expected(first_run):
    assert first_run["proc"].returncode == 0, first_run["err"][-3000:] + first_run["out"][-3000:]
    result = first_run["result"]
    assert result["ok"] is True
    assert [s["id"] for s in result["stories"]] == STORY_IDS
    for story in result["stories"]:
        assert story["ok"] and story["problems"] == [], story
    assert first_run["elapsed"] < 120  # ~20 s on an idle 2-core machine; CI shares its cores


def test_blocked_stories(first_run):
    role = _story(first_run, "over-privileged-role")["facts"]
    assert {"PS019-IAM-001", "PS019-IAM-002", "PS019-IAM-003", "PS019-IAM-004"} <= set(role["passes"]["preview"]
                                                                                       ["mandatory"])
    assert role["skipped"] == ["update"] and "update" not in role["passes"]
    unapproved = _story(first_run, "unapproved-production")["facts"]["passes"]["update"]
    assert unapproved["blocked_at"].endswith("pulumi:pulumi:Stack::web-service-prod")
    assert unapproved["resources_analyzed"] == 1 and "PS019-GATE-001" in unapproved["mandatory"]
    dev = _story(first_run, "development")["facts"]["passes"]
    assert dev["preview"]["passed"] and dev["update"]["passed"]


def test_approved_production_change_is_recorded_with_ticket_class_and_approvers(first_run):
    facts = _story(first_run, "approved-production")["facts"]
    assert facts["passes"]["preview"]["passed"] and facts["passes"]["update"]["passed"]
    assert facts["outcome"] == "succeeded" and facts["change_class"] == "normal"
    assert facts["change_request"] == facts["ticket"]
    assert {"alice@example.com", "bob@example.com"} <= set(facts["verified_approvers"])
    # the deployer is the actor of the CI job's verified OIDC ID token (from the demo's local issuer)
    assert facts["actor"]["id"] == "deploy-bot" and facts["actor"]["kind"] == "ci-oidc"
    assert facts["actor"]["verified"] is True and "CI OIDC ID token" in facts["actor"]["verified_by"]
    assert facts["ci"]["run_id"] and facts["ci"]["run_url"]
    assert facts["promoted"] is True  # the dev story deployed the same program source first


def test_break_glass_emergency_change_waiver_close_and_review(first_run):
    facts = _story(first_run, "break-glass")["facts"]
    assert facts["operator"] == OPERATOR
    assert facts["passes"]["preview"]["passed"] and facts["passes"]["update"]["passed"]
    assert facts["change_class"] == "emergency"
    assert facts["break_glass"] == facts["grant_id"] and facts["break_glass_verified"] is True
    iam = [d for d in facts["overridden"] if d["control"] == "PS019-IAM-001"]
    assert {d["phase"] for d in iam} == {"preview", "update"}
    assert all(d["level"] == "advisory" and d["under_grant"] for d in facts["overridden"])
    assert "PS019-IAM-001" in facts["waived_results"]
    assert facts["status"]["state"] == "closed" and facts["status"]["reviewer"] == REVIEWER
    assert facts["status"]["problems"] == []


def test_auditor_view_verify_sample_report_and_tamper_detection(first_run, demo_tmp):
    facts = _story(first_run, "auditor")["facts"]
    assert facts["approved_change_missing_fields"] == []  # the approved change is evidence-complete
    assert facts["verify"]["ok"] and facts["verify"]["chains"] == 4  # 3 stacks + the break-glass governance chain
    # the demo's passes are offline: records of kinds offline_* that no deployment query counts
    assert {"offline_preview", "offline_update", "offline_blocked", "break_glass_open", "break_glass_close",
            "break_glass_review"} <= set(facts["kinds"])
    assert not {"preview", "update", "blocked"} & set(facts["kinds"])
    approved = _story(first_run, "approved-production")["facts"]["record_id"]
    emergency = _story(first_run, "break-glass")["facts"]["record_id"]
    assert sorted(facts["sample"]) == sorted([approved, emergency])
    report = Path(facts["report"]["path"])
    assert report.is_file() and report.read_text().lstrip().lower().startswith("<!doctype html")
    assert facts["report"]["production_updates"] == 2 and facts["report"]["emergency_updates"] == 1
    tamper = facts["tamper"]
    assert tamper["verify_ok"] is False and tamper["first_broken"] == approved and tamper["code"] == "edited"
    # the tamper test edited a copy: the user's store still verifies
    from ps019.evidence import EvidenceSettings, open_store, verify_store

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(demo_tmp / "data"))
        keys = EvidenceSettings().public_keys()
        with open_store(f"sqlite:///{demo_tmp / 'evidence.db'}?mode=ro") as store:
            assert verify_store(store, keys).ok


def test_no_secret_reaches_the_output(first_run, demo_tmp):
    text = first_run["out"] + first_run["err"]
    for values in DEMO_SECRET_CONFIG.values():
        for secret in values.values():
            assert secret not in text
    assert "PRIVATE KEY" not in text
    key_dir = demo_tmp / "data" / "ps019" / "demo" / "keys"
    for key_file in key_dir.glob("*.key"):
        body = "".join(key_file.read_text().split("\n")[1:-2])
        assert body and body not in text.replace("\n", "")


def test_second_run_on_the_same_store_passes_and_the_chain_grows(first_run, demo_tmp):
    second = _run_demo(demo_tmp, "second")
    assert second["proc"].returncode == 0, second["err"][-3000:] + second["out"][-3000:]
    assert all(s["ok"] for s in second["result"]["stories"])
    first_checked = _story(first_run, "auditor")["facts"]["verify"]["records_checked"]
    assert _story(second, "auditor")["facts"]["verify"]["records_checked"] > first_checked
    assert _story(second, "break-glass")["facts"]["grant_id"] != _story(first_run, "break-glass")["facts"]["grant_id"]


def test_a_shortened_violation_keeps_its_whole_fix(first_run):
    """The demo shortens long messages; what it cuts is the finding's detail, never the `Fix:` the reader acts on
    (it used to cut PS019-IAM-002's fix mid-word: `pin the caller with an exact "aws:Princi...`)."""
    from ps019.cli.demo import _specific

    found = "aws:iam/role:Role 'deploy-role': trust policy trusts principals it should not: " + "x " * 200
    fix = ("Fix: Name the trusted principals (account, role or service), or pin the caller with an exact "
           "\"aws:PrincipalOrgID\" or \"aws:PrincipalArn\" condition; sts:ExternalId alone is not enough.")
    shown = _specific(f"title\n{found}{fix} (overridden under grant BG-20260101-0123456789ab)")
    assert shown.endswith(f"{fix} (overridden under grant BG-20260101-0123456789ab)")
    assert len(shown) <= 400 + len(" (overridden under grant BG-20260101-0123456789ab)")
    assert shown.startswith("aws:iam/role:Role 'deploy-role'") and "…" in shown
    # In the demo itself: the over-privileged role's trust-policy fix is printed whole.
    printed = " ".join(first_run["out"].split())
    assert "sts:ExternalId alone is not enough." in printed
    assert "Fix: Replace \"*\" with the specific actions the workload calls" in printed
