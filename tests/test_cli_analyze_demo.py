"""`ps019 demo`, the README's main command: offline, tells what was blocked and why, shows verified evidence."""

from __future__ import annotations

import time

import pytest

from ps019.cli import main
from ps019.cli.demo import DEMO_SECRET_CONFIG


def test_demo_tells_the_story_and_shows_verified_evidence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the default signing key lives here
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the demo must drop it for its packs
    store = f"sqlite:///{tmp_path / 'evidence.db'}"
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--store", store])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    # 1: the over-privileged deploy role fails its preview, so the update never starts
    for control in ("PS019-IAM-001", "PS019-IAM-002", "PS019-IAM-003", "PS019-IAM-004"):
        assert control in out
    assert 'PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"' in out
    assert "update: not started" in out
    # 2: production without approval is blocked at the root stack resource
    assert "BLOCKED at web-service-prod: 1 resource(s) analyzed" in out
    assert "PS019-GATE-001" in out
    # 3: the clean dev stack passes both passes
    assert "update: PASSED: 14 resources analyzed" in out
    # the evidence the pack wrote, chained and verified
    assert "✓ chain acme/web-service/dev: OK" in out and "✗ chain" not in out
    assert "blocked" in out and "succeeded" in out
    for values in DEMO_SECRET_CONFIG.values():
        for secret in values.values():
            assert secret not in out and secret not in err
    assert elapsed < 120  # well under a minute on an idle machine; CI shares its cores
