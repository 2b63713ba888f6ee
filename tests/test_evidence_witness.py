"""Checkpoints published with every append (``evidence.checkpoints``) and the refusal of a store behind them.

The attacks, by whoever can write the store but not the sink: cut the newest records of a chain and rewind its head
(a clean truncation that ``verify`` alone cannot see), cut a break-glass *close* to revive the grant, restore an
older copy of the whole store. Each is shown to succeed without a witness, then to be refused with one.
"""

from __future__ import annotations

import json
import shutil
import pytest

from ps019.errors import IntegrityError
from ps019.evidence import EvidenceSettings, Signer, open_store, verify_store
from ps019.evidence.checkpoint import LOG_PREFIX, parse_checkpoint
from ps019.evidence.witness import FileSink, behind_checkpoints
from tests.plugins.evidence import make_record
from tests.test_audit_cli import _reset_logging, run  # noqa: F401
from tests.test_breakglass_support import STACK
from tests.test_evidence_attacks import (SIGNER, TRUST, PgOwnerHands, SqliteHands, closed_grant, cut_tail,  # noqa: F401
                                         grant_check, target)
PROD = "acme/payments/prod"
GOV = "ps019/governance/" + STACK


def settings(sink, every=1):
    return EvidenceSettings(checkpoints={"sink": sink, "every": every})


def witnessed(url, sink, every=1):
    return open_store(url, settings(sink, every)).trust(TRUST)


def lines(sink_dir, store_url, chain):
    path = FileSink(sink_dir)._file(store_url, chain)
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_every_append_publishes_a_signed_checkpoint_of_its_chain(tmp_path):
    url, sink = f"sqlite://{tmp_path / 'e.db'}", tmp_path / "sink"
    with witnessed(url, f"file://{sink}") as store:
        appended = [store.append(make_record(), SIGNER) for _ in range(3)]
        store.append(make_record(stack="dev"), SIGNER)
        published = lines(sink, store.url, PROD)
        assert [parse_checkpoint(p, TRUST).chains[PROD] for p in published] == \
            [(s.sequence, s.hash) for s in appended]
        assert store.witness.anchor(PROD, TRUST) == store.heads()[PROD]
        assert sorted(store.witness.sink.chains(store.url)) == ["acme/payments/dev", PROD]


def test_every_n_publishes_at_multiples_and_batches_publish_once(tmp_path):
    url, sink = f"sqlite://{tmp_path / 'e.db'}", tmp_path / "sink"
    with witnessed(url, f"file://{sink}", every=2) as store:
        for _ in range(5):
            store.append(make_record(), SIGNER)
        store.append_many([make_record() for _ in range(4)], SIGNER)  # 6..9: crosses 6 and 8, publishes 9
        assert [p["checkpoint"]["chains"][PROD][0] for p in lines(sink, store.url, PROD)] == [2, 4, 9]


def test_a_truncated_chain_is_refused_against_its_witness(target, tmp_path):  # noqa: F811
    url, hands = target
    sink = f"file://{tmp_path / 'sink'}"
    with witnessed(url, sink) as store:
        for _ in range(5):
            store.append(make_record(), SIGNER)
        cut_tail(hands(), PROD, 3)
        assert verify_store(store, TRUST).ok  # the attack: the store alone looks complete
        problems = behind_checkpoints(store, [PROD])
        assert problems == [("behind", f"a signed checkpoint attests sequence 5 of chain {PROD} but the store ends "
                                       f"at sequence 3: truncated, head rewound or rolled back (checkpoint in {sink})")]


def test_cutting_a_break_glass_close_no_longer_revives_the_grant(target, tmp_path):  # noqa: F811
    url, hands = target
    with open_store(url) as plain:
        plain.trust(TRUST)
        with witnessed(url, f"file://{tmp_path / 'sink'}") as store:
            grant, close = closed_grant(store)
            assert not grant_check(store).valid
            cut_tail(hands(), GOV, close.sequence - 1)  # the close was the chain's newest record
            assert grant_check(plain).valid  # the attack, without a witness: the closed grant is usable again
            with pytest.raises(IntegrityError, match=f"evidence chain {GOV}: a signed checkpoint attests sequence "
                                                     f"{close.sequence} .* rolled back"):
                grant_check(store)
            assert behind_checkpoints(store, [GOV])


def test_a_restored_backup_of_the_whole_store_is_refused(tmp_path):
    path, sink = tmp_path / "e.db", f"file://{tmp_path / 'sink'}"
    with witnessed(f"sqlite://{path}", sink) as store:
        store.append(make_record(), SIGNER)
    shutil.copy(path, tmp_path / "backup.db")
    with witnessed(f"sqlite://{path}", sink) as store:
        store.append(make_record(), SIGNER)
    shutil.copy(tmp_path / "backup.db", path)
    with witnessed(f"sqlite://{path}", sink) as store:
        assert verify_store(store, TRUST).ok
        assert "attests sequence 2" in behind_checkpoints(store, [PROD])[0][1]


def test_a_rewritten_record_at_the_checkpoint_is_refused(tmp_path):
    """Roll back and append again: the head is back at the checkpoint's sequence, but with another record."""
    path, sink = tmp_path / "e.db", f"file://{tmp_path / 'sink'}"
    with witnessed(f"sqlite://{path}", sink) as store:
        store.append(make_record(), SIGNER)
    shutil.copy(path, tmp_path / "backup.db")
    with witnessed(f"sqlite://{path}", sink) as store:
        store.append(make_record(), SIGNER)
    shutil.copy(tmp_path / "backup.db", path)
    with open_store(f"sqlite://{path}") as unwitnessed:  # the writer appends without publishing
        unwitnessed.append(make_record(), SIGNER)
    with witnessed(f"sqlite://{path}", sink) as store:
        assert "differs from the one a signed checkpoint attests" in behind_checkpoints(store, [PROD])[0][1]


def test_an_unreadable_sink_or_a_forged_checkpoint_fails_closed(tmp_path):
    url, sink = f"sqlite://{tmp_path / 'e.db'}", tmp_path / "sink"
    with witnessed(url, f"file://{sink}") as store:
        store.append(make_record(), SIGNER)
        forged = Signer.generate()
        from ps019.evidence.checkpoint import make_checkpoint

        doc = make_checkpoint(store.url, {PROD: (9, "f" * 64)}, forged, verified=False)
        FileSink(sink).publish(store.url, PROD, 9, doc)
        assert behind_checkpoints(store, [PROD])[0][0] == "behind"
        assert "unknown key" in behind_checkpoints(store, [PROD])[0][1]
        shutil.rmtree(sink)
        sink.write_text("not a directory any more")
        assert behind_checkpoints(store, [PROD])[0][0] == "unreadable"


def test_a_sink_that_cannot_be_written_never_costs_the_record(tmp_path, capsys):
    url, sink = f"sqlite://{tmp_path / 'e.db'}", tmp_path / "sink"
    sink.write_text("a file where the sink's directory should be")
    with witnessed(url, f"file://{sink}") as store:
        stored = store.append(make_record(), SIGNER)
        assert store.contains(stored.record_id)
        assert "cannot write" in store.witness.last_error


def test_stderr_sink_lines_in_a_ci_log_prove_truncation(tmp_path, capsys, evidence_home):
    from ps019.evidence import load_signer

    path = tmp_path / "e.db"
    url = f"sqlite://{path}"
    with open_store(url, settings("stderr")) as store:
        for _ in range(3):
            store.append(make_record(), load_signer())
    log = tmp_path / "ci.log"
    log.write_text("step 1\n" + capsys.readouterr().err + "done\n")
    assert log.read_text().count(LOG_PREFIX) == 3
    cut_tail(SqliteHands(path), PROD, 1)
    code, out, _ = run(capsys, "evidence", "verify", "--store", url)
    assert code == 0
    code, out, _ = run(capsys, "evidence", "verify", "--store", url, "--checkpoint", str(log))
    assert code == 1 and "attests sequence 3 of chain acme/payments/prod but the store ends at sequence 1" in out


def test_verify_checkpoints_from_a_file_sink(tmp_path, capsys, evidence_home):
    from ps019.evidence import load_signer

    path, sink = tmp_path / "e.db", f"file://{tmp_path / 'sink'}"
    url = f"sqlite://{path}"
    with open_store(url, settings(sink)) as store:
        for i in range(4):
            store.append(make_record(stack="dev" if i % 2 else "prod"), load_signer())
    capsys.readouterr()
    code, out, _ = run(capsys, "evidence", "verify", "--store", url, "--checkpoints-from", sink)
    assert code == 0 and "consistent with 1 checkpoint(s)" in out
    cut_tail(SqliteHands(path), "acme/payments/dev", 1)
    code, out, _ = run(capsys, "evidence", "verify", "--store", url, "--checkpoints-from", sink)
    assert code == 1 and "attests sequence 2 of chain acme/payments/dev but the store ends at sequence 1" in out
    chain_file = FileSink(tmp_path / "sink")._file(url, PROD)
    code, out, _ = run(capsys, "evidence", "verify", "--store", url, "--stack", PROD, "--checkpoint", str(chain_file))
    assert code == 0 and "consistent with 2 checkpoint(s)" in out


@pytest.mark.moto
def test_s3_object_lock_sink(s3_evidence_url, tmp_path):
    import boto3

    store_url = f"sqlite://{tmp_path / 'e.db'}"
    sink_url = s3_evidence_url.replace("/evidence", "/checkpoints")
    with witnessed(store_url, sink_url) as store:
        appended = [store.append(make_record(), SIGNER) for _ in range(3)]
        assert store.witness.anchor(PROD, TRUST) == (3, appended[-1].hash)
        sink = store.witness.sink
        s3 = boto3.client("s3", endpoint_url=sink._s3.meta.endpoint_url, region_name="us-east-1")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=sink.bucket, Prefix="checkpoints/")["Contents"]]
        assert len(keys) == 3
        head = s3.head_object(Bucket=sink.bucket, Key=keys[0])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        # publishing the same sequence again cannot replace what is there
        from ps019.evidence.checkpoint import make_checkpoint

        sink.publish(store.url, PROD, 3, make_checkpoint(store.url, {PROD: (3, "0" * 64)}, SIGNER, verified=False))
        assert store.witness.anchor(PROD, TRUST) == (3, appended[-1].hash)
        cut_tail(SqliteHands(tmp_path / "e.db"), PROD, 2)
        assert "attests sequence 3" in behind_checkpoints(store, [PROD])[0][1]


def test_settings_refuse_an_unknown_sink():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be file:///absolute/dir, s3://bucket/prefix or stderr"):
        settings("ftp://elsewhere/x")
    with pytest.raises(ValidationError):
        EvidenceSettings(checkpoints={"sink": "stderr", "every": 0})


def test_the_verified_index_refuses_a_store_behind_its_witness(tmp_path):
    from ps019.evidence.verified import VerifiedIndex

    path, sink = tmp_path / "e.db", f"file://{tmp_path / 'sink'}"
    with witnessed(f"sqlite://{path}", sink) as store:
        for _ in range(3):
            store.append(make_record(), SIGNER)
    cut_tail(SqliteHands(path), PROD, 2)
    with witnessed(f"sqlite://{path}", sink) as store:  # a reader who never saw the store before
        store.use_verified_index(VerifiedIndex.for_store(store, directory="memory"))
        with pytest.raises(IntegrityError, match="a signed checkpoint attests sequence 3 but the store does not "
                                                 "hold it"):
            store.summaries()
