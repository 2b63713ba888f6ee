"""Bad packs and bad input fail fast with one clear line, never a hang, a traceback or an orphan process."""

from __future__ import annotations

import os
import time

import pytest

from ps019.engine import EngineResource, PackPool, StackRef, run_pass
from ps019.errors import InputError, PackError

STACK = StackRef.parse("acme/web/dev")
ONE = [EngineResource(urn="urn:pulumi:dev::web::test:index:Thing::a", type="test:index:Thing", inputs={"x": 1})]


def _children_running(pack_dir) -> list[int]:
    """Our child processes that are this pack (other tests' pooled packs are legitimately alive)."""
    import subprocess

    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(os.getpid())], capture_output=True, text=True).stdout
    found = []
    for pid in (int(p) for p in out.split()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(pack_dir).encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("pack, expected", [
    ("no_yaml", r"is not a policy pack: it has no PulumiPolicy.yaml"),
    ("does_not_exist", r"does not exist"),
    ("exits_at_start", r"exited \(status 1\) before printing its port: RuntimeError: exits-at-start pack refuses"),
    ("prints_garbage", r"printed 'hello, I am not a port' instead of its port"),
])
def test_broken_pack_is_one_line_pack_error(test_packs, pack, expected):
    started = time.monotonic()
    with pytest.raises(PackError, match=expected) as info:
        run_pass(test_packs / pack, ONE, stack=STACK, dry_run=True, timeout=20)
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 10


def test_pack_that_never_prints_a_port_times_out(test_packs):
    started = time.monotonic()
    with pytest.raises(PackError, match=r"did not print its port within 2s"):
        run_pass(test_packs / "no_port", ONE, stack=STACK, dry_run=True, timeout=2)
    assert time.monotonic() - started < 6


def test_pack_that_hangs_in_analyze_times_out_and_is_killed(test_packs):
    pool = PackPool()
    started = time.monotonic()
    with pytest.raises(PackError, match=r"did not answer Analyze for test:index:Thing .* within 3s"):
        run_pass(test_packs / "hangs", ONE, stack=STACK, dry_run=True, timeout=3, pool=pool)
    assert time.monotonic() - started < 3 + 10  # timeout plus start-up and kill on a loaded 2-core machine
    assert len(pool) == 0  # the hung process was discarded (and killed), not kept for the next pass
    assert _children_running(test_packs / "hangs") == []


def test_bad_policy_pack_config_is_an_input_error(test_packs, pack_pool, tmp_path):
    with pytest.raises(InputError, match="'probe-resource' has enforcement level 'fatal'"):
        run_pass(test_packs / "probe", ONE, stack=STACK, dry_run=True, pool=pack_pool,
                 policy_pack_config={"probe-resource": "fatal"})
    with pytest.raises(InputError, match="policy pack config is invalid: probe-resource: threshold: must be of type number"):
        run_pass(test_packs / "probe", ONE, stack=STACK, dry_run=True, pool=pack_pool,
                 policy_pack_config={"probe-resource": {"threshold": "high"}})
    garbled = tmp_path / "config.json"
    garbled.write_text("{nope")
    with pytest.raises(InputError, match="is not valid JSON"):
        run_pass(test_packs / "probe", ONE, stack=STACK, dry_run=True, policy_pack_config=garbled)


def test_missing_provider_is_an_input_error(test_packs):
    orphan = EngineResource(urn="urn:pulumi:dev::web::aws:s3/bucket:Bucket::b", type="aws:s3/bucket:Bucket",
                            provider="urn:pulumi:dev::web::pulumi:providers:aws::default")
    with pytest.raises(InputError, match="not among the resources"):
        run_pass(test_packs / "probe", [orphan], stack=STACK, dry_run=True)


def test_bad_stack_reference():
    with pytest.raises(InputError, match="ORGANIZATION/PROJECT/STACK"):
        StackRef.parse("a/b/c/d")


def test_virtualenv_and_python_cmd_choose_the_interpreter(tmp_path, monkeypatch):
    from ps019.engine.pack_process import choose_interpreter, read_pack_project

    pack = tmp_path / "pack"
    (pack / "venv" / "bin").mkdir(parents=True)
    (pack / "venv" / "bin" / "python").write_text("")
    (pack / "PulumiPolicy.yaml").write_text("runtime:\n  name: python\n  options:\n    virtualenv: venv\n")
    assert choose_interpreter(read_pack_project(pack), {}) == str(pack.resolve() / "venv" / "bin" / "python")
    (pack / "PulumiPolicy.yaml").write_text("runtime: python\n")
    assert choose_interpreter(read_pack_project(pack), {"PULUMI_PYTHON_CMD": "sh"}).endswith("/sh")
    import sys

    assert choose_interpreter(read_pack_project(pack), {}) == sys.executable
    (pack / "PulumiPolicy.yaml").write_text("runtime: go\n")
    with pytest.raises(PackError, match="runs python and nodejs packs"):
        read_pack_project(pack)
    # A declared virtualenv that was never created: the CLI refuses (the stand-in can fall back, saying so)
    (pack / "PulumiPolicy.yaml").write_text("runtime:\n  name: python\n  options:\n    virtualenv: missing\n")
    with pytest.raises(PackError, match="run `pulumi install`"):
        choose_interpreter(read_pack_project(pack), {}, fallback=None)
    assert choose_interpreter(read_pack_project(pack), {}, fallback=sys.executable) == sys.executable
