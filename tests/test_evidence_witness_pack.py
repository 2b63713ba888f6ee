"""The pack refuses a store behind its published checkpoints, at deploy time, before anything changes.

Attack: whoever can write the (sqlite) store cuts the newest records of the production stack's chain -- or the
break-glass close at the tail of its governance chain -- and rewinds the head. The chain is still consistent with
itself, so nothing noticed before. With ``evidence.checkpoints`` set, every append published a signed checkpoint to
a sink the writer cannot reach, and the next run is blocked at its first resource by a mandatory PS019-EVID-001
naming the chain.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from ps019.engine import StackRef, run_pass
from tests.test_pack_completeness import _clean_ci, resources

pytestmark = pytest.mark.slow

STACK = StackRef.parse("acme/witnessed/prod")


def cut_tail(db, chain, keep):
    con = sqlite3.connect(db, isolation_level=None)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    (digest,), = con.execute("SELECT hash FROM records WHERE chain_key = ? AND seq = ?", (chain, keep)).fetchall()
    con.execute("DELETE FROM records WHERE chain_key = ? AND seq > ?", (chain, keep))
    con.execute("UPDATE heads SET seq = ?, hash = ? WHERE chain_key = ?", (keep, digest, chain))


def config(tmp_path, sink):
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps({"ps019-settings": {"evidence": {
        "store_url": f"sqlite:///{tmp_path / 'evidence.db'}", "checkpoints": {"sink": sink}}}}))
    return path


def evid(result):
    return [d for d in result.diagnostics if d.policy_name == "PS019-EVID-001"]


def test_a_truncated_production_chain_blocks_the_next_run_at_its_first_resource(ps019_pack, tmp_path, monkeypatch):
    _clean_ci(monkeypatch)
    sink = f"file://{tmp_path / 'sink'}"
    cfg = config(tmp_path, sink)
    for _ in range(3):
        result = run_pass(ps019_pack, resources(STACK), stack=STACK, dry_run=True, policy_pack_config=cfg)
        assert not evid(result)
    cut_tail(tmp_path / "evidence.db", str(STACK), 1)
    # without the checkpoints the truncated store is accepted as it is
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"ps019-settings": {"evidence": {"store_url": f"sqlite:///{tmp_path / 'evidence.db'}"}}}))
    assert not evid(run_pass(ps019_pack, resources(STACK), stack=STACK, dry_run=True, policy_pack_config=plain))
    cut_tail(tmp_path / "evidence.db", str(STACK), 1)  # that run appended one: cut it again
    update = run_pass(ps019_pack, resources(STACK), stack=STACK, dry_run=False, policy_pack_config=cfg)
    assert update.blocked_at == STACK.root_urn
    [diag] = evid(update)
    assert diag.mandatory
    assert f"is behind its signed checkpoints: a signed checkpoint attests sequence 3 of chain {STACK} but the " \
           "store ends at sequence 1" in diag.message


def test_an_unreadable_sink_blocks_production(ps019_pack, tmp_path, monkeypatch):
    _clean_ci(monkeypatch)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cfg = config(tmp_path, f"file://{blocker}")
    run_pass(ps019_pack, resources(STACK), stack=STACK, dry_run=True, policy_pack_config=cfg)  # publish fails: logged
    # a sink whose chain file cannot be read (its folder is a file): the pack cannot tell, so it fails closed
    from ps019.evidence.witness import store_id

    blocker.unlink()
    blocker.mkdir()
    (blocker / store_id(f"sqlite://{tmp_path / 'evidence.db'}")).write_text("not a folder")
    update = run_pass(ps019_pack, resources(STACK), stack=STACK, dry_run=False, policy_pack_config=cfg)
    # one per chain of the stack (its deployments, its governance records); grants cannot be read either
    diags = [d for d in evid(update) if "cannot be checked against its signed checkpoints" in d.message]
    assert update.blocked_at == STACK.root_urn and len(diags) == 2 and all(d.mandatory for d in diags)
