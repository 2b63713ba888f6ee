"""The auditor's CLI (`ps019 evidence list/show/verify/sample/export/reconcile`, `ps019 report`) over a store seeded
through the real append path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.test_audit_support import SECRET, T0, h, seed


@pytest.fixture(autouse=True)
def _reset_logging():
    """The CLI points structlog at the (captured) stderr of the test that ran it; undo that afterwards."""
    import structlog

    yield
    structlog.reset_defaults()


def run(capsys, *args):
    from ps019.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def pop(tmp_path, evidence_home, capsys):
    """(store URL, stored records) for the known population, signed by the local default key."""
    from ps019.evidence import load_signer, open_store

    url = f"sqlite:///{tmp_path / 'pop.db'}"
    with open_store(url) as store:
        stored = seed(store, load_signer())
    capsys.readouterr()  # the seeding's own log lines
    return url, stored


@pytest.fixture
def outputs():
    """Every output a test produced; checked for the seeded secret at teardown."""
    seen: list[str] = []
    yield seen
    for text in seen:
        assert SECRET not in text


def _json_list(capsys, outputs, url, *args):
    code, out, err = run(capsys, "evidence", "list", "--store", url, "--format", "json", "--limit", "0", *args)
    outputs.extend([out, err])
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("args, expected", [
    ((), 35),
    (("--stack", "acme/payments/staging"), 4),
    (("--stack", "staging"), 4),
    (("--environment", "staging"), 4),
    (("--kind", "blocked"), 3),
    (("--change-class", "emergency"), 2),
    (("--actor", "alice"), 1),
    (("--actor", "secops"), 3),
    (("--since", "2026-11-05", "--until", "2026-11-06"), 4),
    (("--break-glass",), 14),
    (("--with-violations",), 19),
    (("--environment", "production", "--kind", "update", "--since", "2026-11-03"), 8),
])
def test_list_filters(capsys, outputs, pop, args, expected):
    rows = _json_list(capsys, outputs, pop[0], *args)
    assert len(rows) == expected
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)


def test_list_table_and_limit(capsys, outputs, pop):
    code, out, err = run(capsys, "evidence", "list", "--store", pop[0], "--limit", "3")
    outputs.append(out)
    assert code == 0 and "3 evidence record(s)" in out


def test_show_full_record_and_signature_status(capsys, outputs, pop):
    from ps019.evidence import Signer

    rid = pop[1][0].record_id
    code, out, err = run(capsys, "evidence", "show", rid, "--store", pop[0])
    outputs.append(out)
    assert code == 0 and "signature: valid" in out and rid in out and "CHG-0 token=[secret]" in out
    code, out, _ = run(capsys, "evidence", "show", rid, "--store", pop[0], "--format", "json")
    doc = json.loads(out)
    assert doc["record"]["record_id"] == rid and doc["signature"]["valid"] is True
    other = Signer.generate().public_key_b64()
    code, out, _ = run(capsys, "evidence", "show", rid, "--store", pop[0], "--public-key", other)
    assert code == 1 and "INVALID" in out
    code, _, err = run(capsys, "evidence", "show", "no-such-id", "--store", pop[0])
    assert code == 2 and err.count("\n") == 1


def test_verify_ok_then_names_first_tampered_record(capsys, outputs, pop, tmp_path):
    url, stored = pop
    code, out, _ = run(capsys, "evidence", "verify", "--store", url)
    assert code == 0 and out.startswith("OK: 35 records in 3 chain(s)")  # 2 stacks + one governance chain
    code, out, _ = run(capsys, "evidence", "verify", "--store", url, "--stack", "acme/payments/staging")
    assert code == 0 and "OK: 4 records" in out
    # An insider edits a stored record behind the append-only triggers' back.
    victim = stored[5]
    con = sqlite3.connect(tmp_path / "pop.db")
    con.execute("DROP TRIGGER records_no_update")
    doc = dict(victim.document, change_class="standard")
    con.execute("UPDATE records SET document = ? WHERE record_id = ?", (json.dumps(doc), victim.record_id))
    con.commit()
    con.close()
    code, out, _ = run(capsys, "evidence", "verify", "--store", url, "--format", "json")
    result = json.loads(out)
    assert code == 1 and result["ok"] is False
    assert result["first_failure"]["record_id"] == victim.record_id
    assert "change_class" in result["first_failure"]["reason"]
    code, out, _ = run(capsys, "evidence", "verify", "--store", url)
    assert code == 1 and out.startswith("BROKEN") and victim.record_id in out


def test_sample_is_deterministic_and_only_production_changes_in_period(capsys, outputs, pop):
    url = pop[0]

    def draw(seed, n=4, *extra):
        code, out, err = run(capsys, "evidence", "sample", "--store", url, "--n", str(n), "--seed", seed,
                             "--since", "2026-11-02", "--until", "2026-11-09", "--format", "json", *extra)
        outputs.append(out)
        assert code == 0, err
        return json.loads(out)

    a, b, c = draw("Q4-audit"), draw("Q4-audit"), draw("another-seed")
    assert a == b
    assert [r["record_id"] for r in a["sample"]] != [r["record_id"] for r in c["sample"]]
    assert a["population"] == 7  # production updates on Nov 2..8
    for r in a["sample"] + c["sample"]:
        assert r["kind"] == "update" and r["environment"] == "production"
        assert "2026-11-02" <= r["started_at"] < "2026-11-09"
    # The documented algorithm, re-derived independently with hashlib.
    import hashlib

    ids = [r["record_id"] for r in draw("Q4-audit", 7)["sample"]]
    assert ids == sorted(ids, key=lambda i: hashlib.sha256(f"Q4-audit:{i}".encode()).hexdigest())
    assert draw("Q4-audit", 50)["sample"].__len__() == 7
    code, out, _ = run(capsys, "evidence", "sample", "--store", url, "--n", "2", "--seed", "x")
    assert code == 0 and "ps019-sample-v1" in out


def test_export_jsonl_round_trips_and_verifies_offline(capsys, outputs, pop, tmp_path):
    from ps019.evidence.export import read_jsonl

    out_file = tmp_path / "e.jsonl"
    code, _, err = run(capsys, "evidence", "export", "--store", pop[0], "--format", "jsonl", "--out", str(out_file))
    assert code == 0, err
    text = out_file.read_text()
    outputs.append(text)
    back = list(read_jsonl(text.splitlines()))
    assert {r.record_id: (r.document, r.envelope) for r in back} == \
        {r.record_id: (r.document, r.envelope) for r in pop[1]}
    code, out, _ = run(capsys, "evidence", "verify", "--file", str(out_file))
    assert code == 0 and "OK: 35 records" in out
    # Delete one line from the export: the chain notices.
    lines = text.splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    code, out, _ = run(capsys, "evidence", "verify", "--file", str(tmp_path / "cut.jsonl"))
    assert code == 1 and "gap" in out


def test_export_csv_round_trips(capsys, outputs, pop):
    import csv
    import io

    from ps019.evidence.export import CSV_COLUMNS, read_csv

    code, out, err = run(capsys, "evidence", "export", "--store", pop[0], "--format", "csv",
                         "--since", "2026-11-01", "--until", "2026-11-03")
    outputs.append(out)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    back = read_csv(out)
    expected = {r.record_id: r for r in pop[1] if "2026-11-01" <= r.document["started_at"] < "2026-11-03"}
    assert {r.record_id for r in back} == set(expected)
    for r in back:
        assert r.document == expected[r.record_id].document and r.envelope == expected[r.record_id].envelope
    incomplete = [row for row in rows if row["missing_required_fields"]]
    assert [row["missing_required_fields"] for row in incomplete] == ["rollback_plan"]


def test_export_oscal_validates_with_trestle(capsys, outputs, pop, tmp_path, monkeypatch):
    import sys

    from trestle.oscal.assessment_results import AssessmentResults

    from ps019.evidence.export import check_oscal_references

    code, out, err = run(capsys, "evidence", "export", "--store", pop[0], "--format", "oscal",
                         "--since", "2026-11-01", "--until", "2026-12-01")
    outputs.append(out)
    assert code == 0, err
    doc = json.loads(out)
    AssessmentResults(**doc["assessment-results"])  # the pydantic model trestle validates with
    assert check_oscal_references(doc) == []
    result = doc["assessment-results"]["results"][0]
    assert len(result["observations"]) == 35
    findings = {f["target"]["target-id"]: f["target"]["status"]["state"] for f in result["findings"]}
    assert findings == {"cm-3_smt": "not-satisfied", "cm-3.2_smt": "satisfied", "cm-5_smt": "not-satisfied"}
    assert {p["name"]: p["value"] for p in result["props"]}["chain-verified"] == "true"
    # Same records -> same document (uuid5), apart from the generation time.
    code, again, _ = run(capsys, "evidence", "export", "--store", pop[0], "--format", "oscal",
                         "--since", "2026-11-01", "--until", "2026-12-01")
    assert json.loads(again)["assessment-results"]["uuid"] == doc["assessment-results"]["uuid"]
    # trestle's own `init` + `validate -f` (in-process: the CLI costs seconds of imports), inside a trestle
    # workspace because validate refuses files outside one.
    from trestle.cli import Trestle

    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    monkeypatch.setattr(sys, "argv", ["trestle", "init"])
    assert Trestle().run() == 0
    target = ws / "assessment-results" / "ps019" / "assessment-results.json"
    target.parent.mkdir(parents=True)
    target.write_text(out)
    monkeypatch.setattr(sys, "argv", ["trestle", "validate", "-f", str(target)])
    capsys.readouterr()
    assert Trestle().run() == 0
    assert "VALID" in capsys.readouterr().out
    # ... and it does reject a broken document (so the check above has teeth).
    bad = json.loads(out)
    bad["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = "passed"
    target.write_text(json.dumps(bad))
    assert Trestle().run() != 0


def _history(stored, missing_at=None):
    """`pulumi stack history --json` for acme/payments/prod: one entry per production update record, plus one
    update that has no record (at ``missing_at``) and a refresh."""
    entries = []
    prod = sorted((r for r in stored if r.document["kind"] == "update" and r.document["stack"] == "prod"),
                  key=lambda r: r.document["started_at"])
    for v, r in enumerate(prod, 1):
        start = r.document["started_at"][:19] + "Z"
        entries.append({"version": v, "kind": "update", "startTime": start, "message": "deploy",
                        "environment": {"git.head": "a" * 40, "exec.kind": "cli"},
                        "config": {"payments:dbPassword": {"secret": True}},
                        "result": "succeeded", "endTime": r.document["ended_at"][:19] + "Z",
                        "resourceChanges": {"same": 2}})
    if missing_at:
        entries.append({"version": len(entries) + 1, "kind": "update", "startTime": missing_at,
                        "message": "hotfix from a laptop", "environment": {"git.head": "f" * 40}, "config": {},
                        "result": "succeeded", "endTime": missing_at, "resourceChanges": {"update": 1}})
    entries.append({"version": len(entries) + 1, "kind": "refresh", "startTime": "2026-11-20T00:00:00Z",
                    "message": "", "environment": {}, "config": {}, "result": "succeeded",
                    "endTime": "2026-11-20T00:00:05Z"})
    return list(reversed(entries))  # the CLI prints newest first


def test_reconcile_lists_updates_without_evidence(capsys, outputs, pop, tmp_path):
    url, stored = pop
    hist = tmp_path / "history.json"
    hist.write_text(json.dumps(_history(stored)))
    code, out, err = run(capsys, "evidence", "reconcile", "--history", str(hist), "--stack", "acme/payments/prod",
                         "--store", url)
    assert code == 0, out + err
    assert "10 of 10 update entries have an evidence record; 0 missing" in out
    hist.write_text(json.dumps(_history(stored, missing_at="2026-11-04T12:00:00Z")))
    code, out, _ = run(capsys, "evidence", "reconcile", "--history", str(hist), "--stack", "acme/payments/prod",
                       "--store", url, "--format", "json")
    result = json.loads(out)
    assert code == 1
    assert [(m["version"], m["start"]) for m in result["missing"]] == [(11, "2026-11-04T12:00:00+00:00")]
    assert len(result["matched"]) == 10 and result["ignored"] == [{"version": 12, "kind": "refresh"}]
    code, out, _ = run(capsys, "evidence", "reconcile", "--history", str(hist), "--stack", "acme/payments/prod",
                       "--store", url, "--kinds", "update,refresh")
    assert code == 1 and "MISSING version 11" in out and "MISSING version 12" in out
    hist.write_text("{not json")
    code, _, err = run(capsys, "evidence", "reconcile", "--history", str(hist), "--stack", "acme/payments/prod",
                       "--store", url)
    assert code == 2 and err.count("\n") == 1


def test_reconcile_commit_mismatch_is_not_a_match():
    from ps019.evidence.audit import parse_stack_history, reconcile

    hist = parse_stack_history([{"version": 1, "kind": "update", "startTime": "2026-11-01T00:00:00Z",
                                 "endTime": "2026-11-01T00:01:00Z", "result": "succeeded",
                                 "environment": {"git.head": "b" * 40}}])
    rec = {"record_id": "r1", "kind": "update", "started_at": "2026-11-01T00:00:30.000000Z",
           "artifact": {"git_commit": "a" * 40}}
    assert [h.version for h in reconcile(hist, [rec]).missing] == [1]
    assert reconcile(hist, [dict(rec, artifact={"git_commit": "b" * 40})]).ok


@pytest.mark.parametrize("url", ["sqlite:////nonexistent-dir/evidence.db", "postgresql://auditor:pw@127.0.0.1:1/ev",
                                 "ftp://example/x"])
@pytest.mark.parametrize("command", [("evidence", "list"), ("evidence", "verify"), ("report", "--since", "30d"),
                                     ("evidence", "export", "--format", "jsonl")])
def test_unreachable_store_is_one_line_exit_2(capsys, evidence_home, url, command):
    code, out, err = run(capsys, *command, "--store", url)
    assert code == 2
    assert err.startswith("ps019: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "pw@" not in err  # credentials in the URL are never echoed


def test_report_cli_json_and_offline_html(capsys, outputs, pop, tmp_path):
    code, out, err = run(capsys, "report", "--store", pop[0], "--since", "2026-11-01", "--until", "2026-12-01",
                         "--format", "json")
    outputs.append(out)
    assert code == 0, err
    m = json.loads(out)
    assert m["production_updates"] == 10 and m["emergency_ratio"] == 0.2
    html_file = tmp_path / "r.html"
    code, _, err = run(capsys, "report", "--store", pop[0], "--since", "2026-11-01", "--until", "2026-12-01",
                       "--format", "html", "--out", str(html_file))
    assert code == 0, err
    page = html_file.read_text()
    outputs.append(page)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 3
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "src=" not in page and "url(" not in page  # nothing loaded from anywhere: works offline
    assert "70.0%" in page and "G4" in page and "E1" in page
    code, out, _ = run(capsys, "report", "--store", pop[0], "--since", "2026-11-01", "--until", "2026-12-01")
    outputs.append(out)
    assert code == 0 and "Evidence completeness" in out and "70.0%" in out
    code, _, err = run(capsys, "report", "--store", pop[0], "--since", "2026-12-01", "--until", "2026-11-01")
    assert code == 2 and "--until must be after --since" in err


def test_flush_delivers_the_spool_once(capsys, outputs, evidence_home, tmp_path):
    from ps019.evidence import EvidenceSettings, emit
    from tests.plugins.evidence import make_record

    (tmp_path / "down").write_text("the store's directory is a file: unreachable")
    url = f"sqlite:///{tmp_path / 'down' / 'ev.db'}"
    spooled = emit(make_record(forbidden_values={SECRET}, change_request=f"CHG {SECRET}"),
                   EvidenceSettings(store_url=url))
    assert spooled.status == "spooled"
    capsys.readouterr()  # emit's own warnings
    other = f"sqlite:///{tmp_path / 'other.db'}"
    code, out, err = run(capsys, "evidence", "flush", "--store", other)  # not the store it was spooled for
    outputs.extend([out, err])
    assert code == 1 and "not delivered" in err and out.startswith("0 delivered, 0 already in the store, 1 still")
    (tmp_path / "down").unlink()
    (tmp_path / "down").mkdir()
    code, out, err = run(capsys, "evidence", "flush", "--store", url)
    outputs.extend([out, err])
    assert code == 0 and out.startswith("1 delivered, 0 already in the store, 0 still spooled")
    code, out, _ = run(capsys, "evidence", "flush", "--store", url)
    assert code == 0 and out.startswith("0 delivered")
    assert [r["record_id"] for r in _json_list(capsys, outputs, url)] == [spooled.record_id]
    code, _, err = run(capsys, "evidence", "flush", "--store", "postgresql://writer:pw@127.0.0.1:1/evidence")
    assert code == 0 or (code == 2 and "pw@" not in err and err.count("\n") == 1)
