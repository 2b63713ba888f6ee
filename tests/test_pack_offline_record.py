"""Offline runs in the evidence record (issue 8 items 1 and 6): every pass `ps019 analyze`/`ps019 up` drives is
recorded by the ps019 pack with an offline kind (offline_preview, offline_update, offline_blocked) and an ``offline``
field naming the command, the input and the offline placeholders the run judged, so that an offline run is never
counted, sampled or checked as a deployment. The marker cannot hide a real deployment: the pack honours it only when
it was started by the stand-in. Where the stack facts came from is recorded per field."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ps019.engine import StackRef, run_pass
from ps019.evidence.record import EvidenceRecord, OfflineRun

ROOT = Path(__file__).resolve().parents[1]
PROD_EXPORT = ROOT / "examples" / "web-service" / "stack-export.prod.json"
PROD = "acme/web-service/prod"


def cli(capsys, *args) -> tuple[int, str, str]:
    from ps019.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def records(store_url: str) -> list[dict]:
    from ps019.evidence import open_store

    with open_store(store_url) as store:
        return sorted((r.document for r in store.query()), key=lambda d: d["started_at"])


@pytest.fixture
def advisory_production(pinned_store_config):
    """Production with the gate advisory (no change request needed): an offline `ps019 up` then goes through both
    passes and its update pass succeeds: the case an auditor must never count."""
    # identity.lookup off: the stack does not deploy to AWS here (no STS to verify the deployer against)
    return pinned_store_config({"gate": {"rules": {"production": {"enforcement": "advisory"}}},
                                "identity": {"lookup": "off"}})


def test_an_offline_up_of_production_is_never_counted_as_a_production_deployment(
        advisory_production, ps019_home, capsys):
    import os

    from ps019.evidence import open_store
    from ps019.evidence.audit import load_promotion_facts
    from ps019.evidence.report import compute_metrics, load_documents

    store_url = os.environ["PS019_EVIDENCE_STORE"]
    before = {d["record_id"] for d in records(store_url)}  # the session's store: other tests' records stay out
    since = datetime.now(timezone.utc)
    code, out, _ = cli(capsys, "up", "--state", PROD_EXPORT, "--stack", PROD, "--policy-pack-config",
                       advisory_production, "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert [p["phase"] for p in report["passes"]] == ["preview", "update"] and report["source"]["offline"] is True
    new = [d for d in records(store_url) if d["record_id"] not in before]
    assert [(d["kind"], d["outcome"]) for d in new] == [("offline_preview", "previewed"),
                                                          ("offline_update", "succeeded")]
    for d in new:
        assert d["environment"] == "production"
        assert d["offline"]["engine"].endswith("engine stand-in (ps019 up)") and d["offline"]["source"] == "state"
        assert d["recording"]["stack_facts"] == {"organization": "ConfigureStack", "project": "ConfigureStack",
                                                 "stack": "ConfigureStack", "dry_run": "ConfigureStack",
                                                 "config": "ConfigureStack"}
    update = new[1]
    assert update["links"]["preview_record_id"] == new[0]["record_id"]  # the offline preview it followed

    # What an auditor runs: none of it counts the offline update as a production deployment.
    mine = {d["record_id"] for d in new}
    with open_store(store_url) as store:
        assert [r.record_id for r in store.query(kind="update", stack=PROD) if r.record_id in mine] == []
        metrics = compute_metrics(load_documents(store, since, None), since=since, until=None)
        promotion = load_promotion_facts(store, "acme", "web-service", update["artifact"])
    assert metrics.production_updates == 0 and metrics.blocked_attempts == 0 and metrics.offline_runs >= 2
    assert not {p.record_id for p in promotion.prior_updates} & mine
    code, out, _ = cli(capsys, "evidence", "sample", "--store", store_url, "--since", "1d", "--format", "json")
    assert update["record_id"] not in out
    code, out, _ = cli(capsys, "report", "--store", store_url, "--since", "1d")
    assert code == 0 and "Offline runs (not deployments)" in out
    code, out, _ = cli(capsys, "evidence", "show", update["record_id"][:8], "--store", store_url)
    assert code == 0 and "OFFLINE RUN, NOT A DEPLOYMENT: this update pass was driven by ps019" in " ".join(out.split())
    # A rehearsal may ask for them explicitly, and the report then says so on every rendering.
    code, out, _ = cli(capsys, "report", "--store", store_url, "--since", "1d", "--include-offline", "--format",
                       "html")
    assert "INCLUDES OFFLINE RUNS" in out


def test_the_placeholders_a_program_run_judged_are_in_its_record(ps019_home, tmp_path, capsys):
    import os

    program = tmp_path / "lookup"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: lookup\nruntime: python\n")
    (program / "__main__.py").write_text(textwrap.dedent("""
        import pulumi_aws as aws
        ami = aws.ec2.get_ami(most_recent=True, owners=["amazon"],
                              filters=[{"name": "name", "values": ["al2023-ami-*"]}])
        aws.ec2.Instance("web", ami=ami.id, instance_type="t3.micro")
    """))
    store_url = os.environ["PS019_EVIDENCE_STORE"]
    before = {d["record_id"] for d in records(store_url)}
    code, out, _ = cli(capsys, "analyze", "--program", program, "--stack", "acme/lookup/dev", "--update",
                       "--config", "aws:region=us-west-2", "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    [record] = [d for d in records(store_url) if d["record_id"] not in before]
    assert record["kind"] == "offline_update" and record["offline"]["source"] == "program"
    assert record["offline"]["placeholders"] == report["source"]["offline_placeholders"]
    assert record["offline"]["placeholders"]["placeholder_invokes"] == ["aws:ec2/getAmi:getAmi"]
    code, out, _ = cli(capsys, "evidence", "show", record["record_id"], "--store", store_url)
    shown = " ".join(out.split())
    assert re.search(r"judged \d+ offline placeholder value\(s\) \([a-z_, ]*placeholder_invokes", shown), shown[-600:]


def test_attack_a_marker_set_in_a_real_engine_run_cannot_hide_the_deployment(
        ps019_pack, ps019_home, monkeypatch):
    """A deployer who controls the environment of a real `pulumi up` sets PS019_OFFLINE_RUN, hoping the update is
    recorded as an offline run and so drops out of every deployment count. The real engine starts the pack with its
    own address (a real port); the pack refuses the marker there, records a normal update and names the refusal."""
    import os

    from ps019.engine import pack_process
    from ps019.engine.resources import EngineResource
    from ps019.pack.stack import OFFLINE_ENV_VAR

    stack = StackRef.parse("acme/hide/dev")
    resources = [EngineResource(urn=stack.root_urn, type="pulumi:pulumi:Stack", custom=False)]
    forged = {**os.environ, OFFLINE_ENV_VAR: json.dumps({"engine": "ps019 engine stand-in (ps019 up)"})}
    monkeypatch.setattr(pack_process, "ENGINE_ADDRESS", "127.0.0.1:43117")  # the real CLI passes its own server's
    store_url = os.environ["PS019_EVIDENCE_STORE"]
    before = {d["record_id"] for d in records(store_url)}
    result = run_pass(ps019_pack, resources, stack=stack, dry_run=False, environ=forged)
    assert not result.failed
    [record] = [d for d in records(store_url) if d["record_id"] not in before]
    assert record["kind"] == "update" and "offline" not in record
    assert any(OFFLINE_ENV_VAR in note and "'127.0.0.1:43117'" in note and "recorded as a deployment" in note
               for note in record["recording"]["ignored"])

    # The same marker from the stand-in's own launch (engine address port 0) is honoured.
    monkeypatch.setattr(pack_process, "ENGINE_ADDRESS", "127.0.0.1:0")
    before |= {record["record_id"]}
    run_pass(ps019_pack, resources, stack=stack, dry_run=False, environ=forged)
    [record] = [d for d in records(store_url) if d["record_id"] not in before]
    assert record["kind"] == "offline_update" and record["offline"]["engine"].endswith("(ps019 up)")


def test_stack_facts_sources_are_recorded_per_field(ps019_pack, ps019_home):
    """An engine older than ConfigureStack (the PULUMI_* variables only): the record says each fact came from the
    environment, which a deployer can set."""
    import os

    from ps019.engine.resources import EngineResource

    stack = StackRef.parse("acme/legacy/dev")
    resources = [EngineResource(urn=stack.root_urn, type="pulumi:pulumi:Stack", custom=False)]
    store_url = os.environ["PS019_EVIDENCE_STORE"]
    before = {d["record_id"] for d in records(store_url)}
    run_pass(ps019_pack, resources, stack=stack, dry_run=True, send_configure_stack=False)
    [record] = [d for d in records(store_url) if d["record_id"] not in before]
    assert record["kind"] == "preview"
    assert set(record["recording"]["stack_facts"].values()) == {"environment"}
    assert set(record["recording"]["stack_facts"]) == {"organization", "project", "stack", "dry_run", "config"}


def test_an_offline_kind_and_the_offline_field_go_together():
    with pytest.raises(ValueError, match="must say how the offline run was driven"):
        EvidenceRecord(kind="offline_update")
    with pytest.raises(ValueError, match="cannot carry offline"):
        EvidenceRecord(kind="update", offline=OfflineRun(engine="ps019 engine stand-in"))
    record = EvidenceRecord(kind="offline_blocked", offline=OfflineRun(engine="x", placeholders={"a": ["b"]}))
    assert record.kind.is_offline and not record.kind.is_deployment
    # a record without these fields keeps the exact form it had before they existed
    assert "offline" not in EvidenceRecord(kind="update").document()


def test_the_report_names_production_updates_whose_stack_facts_came_from_the_environment(
        ps019_pack, advisory_production, ps019_home, capsys):
    """An engine without ConfigureStack: the production update's stack, dry-run and config came from PULUMI_*
    variables the deployer can set. The programme report shows how many such updates there were, and which."""
    import os

    from ps019.engine.resources import EngineResource

    stack = StackRef.parse("acme/legacy/prod")
    resources = [EngineResource(urn=stack.root_urn, type="pulumi:pulumi:Stack", custom=False)]
    store_url = os.environ["PS019_EVIDENCE_STORE"]
    before = {d["record_id"] for d in records(store_url)}
    run_pass(ps019_pack, resources, stack=stack, dry_run=False, send_configure_stack=False,
             policy_pack_config=advisory_production)
    capsys.readouterr()  # the pass's own log lines
    [record] = [d for d in records(store_url) if d["record_id"] not in before]
    assert (record["kind"], record["environment"]) == ("update", "production")
    code, out, _ = cli(capsys, "report", "--store", store_url, "--since", "1d", "--stack", str(stack),
                       "--format", "json")
    assert code == 0, out
    [entry] = json.loads(out)["stack_facts_from_environment"]
    assert entry["record_id"] == record["record_id"] and "stack" in entry["fields"] and "dry_run" in entry["fields"]
    code, out, _ = cli(capsys, "report", "--store", store_url, "--since", "1d", "--stack", str(stack))
    assert re.search(r"Stack facts from\s.*environment\s.*1", " ".join(out.split())), out
