"""`ps019 evidence checkpoint` and `ps019 evidence verify --checkpoint FILE`, as an auditor runs them."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.plugins.evidence import make_record


def run(capsys, *args):
    from ps019.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def store_url(tmp_path, evidence_home, capsys):
    from ps019.evidence import load_signer, open_store

    url = f"sqlite://{tmp_path / 'evidence.db'}"
    with open_store(url) as store:
        for i in range(5):
            store.append(make_record(stack="prod" if i % 2 else "dev"), load_signer())
    capsys.readouterr()
    return url


def test_checkpoint_then_truncate_then_verify_names_what_is_missing(store_url, tmp_path, capsys):
    cp_file = tmp_path / "cp.json"
    code, _, err = run(capsys, "evidence", "checkpoint", "--store", store_url, "--out", str(cp_file))
    assert code == 0 and "checkpoint of 2 chain(s) written" in err
    body = json.loads(cp_file.read_text())
    assert body["checkpoint"]["records"] == 5 and body["checkpoint"]["verified"] is True
    code, out, _ = run(capsys, "evidence", "verify", "--store", store_url, "--checkpoint", str(cp_file))
    assert code == 0 and "consistent with 1 checkpoint(s)" in out
    # the writer deletes the newest dev record and rewinds the head
    con = sqlite3.connect(store_url[len("sqlite://"):])
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("DELETE FROM records WHERE chain_key = 'acme/payments/dev' AND seq = 3")
    (h,), = con.execute("SELECT hash FROM records WHERE chain_key = 'acme/payments/dev' AND seq = 2").fetchall()
    con.execute("UPDATE heads SET seq = 2, hash = ? WHERE chain_key = 'acme/payments/dev'", (h,))
    con.commit()
    code, out, _ = run(capsys, "evidence", "verify", "--store", store_url)
    assert code == 0  # without the checkpoint the store looks complete
    code, out, _ = run(capsys, "evidence", "verify", "--store", store_url, "--checkpoint", str(cp_file),
                       "--format", "json")
    result = json.loads(out)
    assert code == 1 and [f["code"] for f in result["failures"]] == ["checkpoint"]
    assert "attests sequence 3 of chain acme/payments/dev but the store ends at sequence 2" in \
        result["failures"][0]["reason"]


def test_an_edited_checkpoint_is_refused_in_one_line(store_url, tmp_path, capsys):
    cp_file = tmp_path / "cp.json"
    run(capsys, "evidence", "checkpoint", "--store", store_url, "--out", str(cp_file))
    body = json.loads(cp_file.read_text())
    body["checkpoint"]["chains"]["acme/payments/dev"][0] = 1  # lower what the store must still hold
    cp_file.write_text(json.dumps(body))
    code, out, err = run(capsys, "evidence", "verify", "--store", store_url, "--checkpoint", str(cp_file))
    assert code == 1 and err.count("\n") == 1 and "field chains: differs from what was signed" in err
    cp_file.write_text("{}")
    code, _, err = run(capsys, "evidence", "verify", "--store", store_url, "--checkpoint", str(cp_file))
    assert code == 2 and err.count("\n") == 1 and "is not a ps019 evidence checkpoint" in err


def test_checkpoint_refuses_to_attest_a_broken_store(store_url, tmp_path, capsys):
    con = sqlite3.connect(store_url[len("sqlite://"):])
    con.execute("DROP TRIGGER records_no_update")
    con.execute("UPDATE records SET kind = 'preview' WHERE seq = 1")
    con.commit()
    code, _, err = run(capsys, "evidence", "checkpoint", "--store", store_url, "--out", str(tmp_path / "cp.json"))
    assert code == 1 and "BROKEN" in err and not (tmp_path / "cp.json").exists()


def test_list_refuses_a_row_whose_column_was_edited_naming_record_and_field(store_url, capsys):
    con = sqlite3.connect(store_url[len("sqlite://"):])
    con.execute("DROP TRIGGER records_no_update")
    (rid,), = con.execute("SELECT record_id FROM records WHERE seq = 2 AND chain_key = 'acme/payments/dev'")
    con.execute("UPDATE records SET environment = 'staging' WHERE record_id = ?", (rid,))
    con.commit()
    code, out, err = run(capsys, "evidence", "list", "--store", store_url)
    assert code == 1 and err.count("\n") == 1
    assert f"evidence record {rid}: field environment: indexed column environment is 'staging'" in err
    code, out, _ = run(capsys, "evidence", "verify", "--store", store_url)
    assert code == 1 and f"FAIL [column] record {rid}" in out
