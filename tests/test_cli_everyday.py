"""Everyday CLI faults a new user hit (issue 9): every --out creates missing directories or refuses with one line,
short record IDs are accepted, repeated multi-value options accumulate, and titles fit the tier."""

from __future__ import annotations

import json

import pytest

from tests.test_audit_cli import _history, pop, run  # noqa: F401 - pop is a fixture


@pytest.fixture(autouse=True)
def _reset_logging():
    import structlog

    yield
    structlog.reset_defaults()


def _one_line_error(code, out, err):
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = [x for x in err.splitlines() if x.strip()]
    # ours: exactly one line; click's own usage errors end with one "Error: ..." line after the usage hint
    assert (len(lines) == 1 and lines[0].startswith("ps019: error:")) or lines[-1].startswith("Error:"), err
    return lines[-1]


CR_ARGS = ["--ticket", "CHG-1", "--summary", "s", "--owner", "web", "--author", "carol@example.com", "--stack",
           "acme/web/prod", "--commit", "c" * 40]


def test_change_request_new_creates_the_missing_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "change-request", "new", "--out", "changes/CHG-1.json", *CR_ARGS)
    assert code == 0, err
    assert json.loads((tmp_path / "changes" / "CHG-1.json").read_text())["ticket"] == "CHG-1"


def test_out_under_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    line = _one_line_error(*run(capsys, "change-request", "new", "--out", "afile/CHG-1.json", *CR_ARGS))
    assert "afile" in line and "not a directory" in line
    line = _one_line_error(*run(capsys, "keygen", "--out", "afile/keys", "--identity", "a@example.com"))
    assert "afile" in line
    line = _one_line_error(*run(capsys, "keygen", "--out", "afile", "--identity", "a@example.com"))
    assert "afile" in line


def test_evidence_export_out_creates_directories_and_refuses_under_a_file(pop, tmp_path, capsys):  # noqa: F811
    url, stored = pop
    target = tmp_path / "nodir" / "deeper" / "x.jsonl"
    code, _, err = run(capsys, "evidence", "export", "--store", url, "--format", "jsonl", "--out", str(target))
    assert code == 0, err
    assert len(target.read_text().splitlines()) == len(stored)
    (tmp_path / "plain").write_text("")
    _one_line_error(*run(capsys, "evidence", "export", "--store", url, "--format", "jsonl", "--out",
                         str(tmp_path / "plain" / "x.jsonl")))


def test_evidence_show_takes_the_short_ids_it_prints(pop, capsys):  # noqa: F811
    url, stored = pop
    record_id = stored[0].record_id
    code, out, err = run(capsys, "evidence", "show", record_id[:8], "--store", url, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["record"]["record_id"] == record_id
    # a prefix shared by two records is refused, naming both
    ids = sorted(s.record_id for s in stored)
    shared = next((a[:n] for a, b in zip(ids, ids[1:]) for n in range(4, 9) if a[:n] == b[:n]), None)
    if shared is not None:
        line = _one_line_error(*run(capsys, "evidence", "show", shared, "--store", url))
        assert "ambiguous" in line
    _one_line_error(*run(capsys, "evidence", "show", "zzzzzzzz", "--store", url))


def test_repeated_kinds_accumulate(pop, tmp_path, capsys):  # noqa: F811
    url, stored = pop
    hist = tmp_path / "history.json"
    hist.write_text(json.dumps(_history(stored)))
    code, out, _ = run(capsys, "evidence", "reconcile", "--history", str(hist), "--stack", "acme/payments/prod",
                       "--store", url, "--kinds", "update", "--kinds", "refresh", "--format", "json")
    assert json.loads(out)["reconciled_kinds"] == ["update", "refresh"]
    assert code == 1  # the refresh has no record, and now it is asked about


def test_development_stacks_get_no_production_titles(tmp_path, monkeypatch):
    from ps019.cli.analyze import run_analysis

    report = run_analysis(stack="acme/web-service/dev", state="examples/web-service/stack-export.dev.json")
    titles = [d["message"].splitlines()[0] for p in report["passes"] for d in p["diagnostics"]]
    assert titles, "the dev stack is expected to get the advisory change-request finding"
    assert not [t for t in titles if "production" in t.lower()], titles


def test_the_template_config_says_it_is_a_template_when_used_as_it_is():
    """BEFORE: config.example.json used as documented gave a mandatory EVID-001 about an unreachable S3 bucket and a
    missing key file, with nothing saying these were example values."""
    from ps019.cli.analyze import run_analysis

    report = run_analysis(stack="acme/web-service/dev", state="examples/web-service/stack-export.dev.json",
                          policy_pack_config="policypacks/ps019/config.example.json")
    evidence = [d for p in report["passes"] for d in p["diagnostics"] if d["policy"] == "PS019-EVID-001"]
    assert evidence and all("REPLACE-ME" in d["message"] for d in evidence), evidence
