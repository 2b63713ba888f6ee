"""The publishable pack (issue 9, "Installable and publishable pack").

`ps019 pack build --out DIR` builds the ps019 wheel and writes a self-contained pack. A published or Pulumi
Cloud-enforced pack is unpacked alone, so the test copies the built pack into an empty directory with no repository
around it, installs it exactly as the Pulumi CLI installs a Python pack (pulumi sdk/python/toolchain/pip.go:
`python -m venv <pack>/venv`, `pip install --upgrade pip setuptools wheel`, `pip install -r requirements.txt` with the
working directory at the pack), and runs a preview and an update through the engine stand-in, which launches the pack as
the Python language host does (`<venv>/bin/python -u -m pulumi.policy <engine> <pack dir>`, cwd at the pack).
Dependencies other than ps019 come from the package index (pip's cache makes repeat runs fast).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ps019.engine import EngineResource, PackPool, StackRef, run_pass

ROOT = Path(__file__).resolve().parents[1]


def test_the_repository_pack_declares_its_runtime_and_installs_from_anywhere():
    project = yaml.safe_load((ROOT / "policypacks" / "ps019" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv", "toolchain": "pip"}}
    requirements = (ROOT / "policypacks" / "ps019" / "requirements.txt").read_text().splitlines()
    lines = [x.split("#")[0].strip() for x in requirements if x.split("#")[0].strip()]
    assert not [x for x in lines if x.startswith(("-e", ".", "/"))], "a path only works from one directory"
    pyproject = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())
    assert sorted(lines) == sorted(pyproject["project"]["dependencies"]), \
        "policypacks/ps019/requirements.txt must list ps019's runtime dependencies (pyproject.toml)"
    ignored = subprocess.run(["git", "check-ignore", "-q", "policypacks/ps019/venv/bin/python"], cwd=ROOT)
    assert ignored.returncode == 0, "policypacks/ps019/venv is not ignored by git"


def _resources(stack: StackRef) -> list[EngineResource]:
    root = stack.root_urn
    return [EngineResource(urn=root, type="pulumi:pulumi:Stack", custom=False),
            EngineResource(urn=f"urn:pulumi:{stack.stack}::{stack.project}::aws:s3/bucket:Bucket::site",
                           type="aws:s3/bucket:Bucket", id="site", parent=root, inputs={"bucket": "site"},
                           outputs={"bucket": "site"})]


@pytest.fixture(scope="module")
def built_pack(tmp_path_factory) -> Path:
    from ps019.cli import main

    out = tmp_path_factory.mktemp("build") / "nested" / "ps019-pack"
    with pytest.raises(SystemExit) as exit_info:
        main(["pack", "build", "--out", str(out)])
    assert exit_info.value.code == 0
    return out


@pytest.mark.slow
def test_built_pack_installs_and_runs_from_an_empty_directory(built_pack, tmp_path, evidence_store):
    files = sorted(p.relative_to(built_pack).as_posix() for p in built_pack.rglob("*") if p.is_file())
    info = json.loads((built_pack / "BUILD-INFO.json").read_text())
    from ps019.pack.build import pack_digest

    assert info["pack_digest"] == f"sha256:{pack_digest(built_pack)}"
    assert {"PulumiPolicy.yaml", "__main__.py", "requirements.txt", "README.md", info["wheel"]} <= set(files)
    requirement = [x for x in (built_pack / "requirements.txt").read_text().splitlines() if not x.startswith("#")]
    assert requirement == [f"./{info['wheel']}"]

    # Unpacked alone: an empty directory outside any repository.
    pack = tmp_path / "unpacked" / "ps019"
    shutil.copytree(built_pack, pack)
    assert subprocess.run(["git", "rev-parse"], cwd=pack, capture_output=True).returncode != 0
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    base_python = getattr(sys, "_base_executable", sys.executable)
    venv = pack / "venv"
    steps = [[base_python, "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", "requirements.txt"]]
    for step in steps:
        proc = subprocess.run(step, cwd=pack, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{' '.join(step[-3:])}: {proc.stderr.strip()[-800:]}"
    located = subprocess.run([str(venv / "bin" / "python"), "-c", "import ps019; print(ps019.__file__)"], cwd=pack,
                             env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert located.startswith(str(venv)), located

    stack = StackRef.parse("acme/built-pack/dev")
    with PackPool() as pool:
        preview = run_pass(pack, _resources(stack), stack=stack, dry_run=True, pool=pool, timeout=120)
        [process] = list(pool._processes.values())  # noqa: SLF001 - the exact command line is what is under test
        assert process.command == [str(venv / "bin" / "python"), "-u", "-m", "pulumi.policy", "127.0.0.1:0",
                                   str(pack.resolve())]
    update = run_pass(pack, _resources(stack), stack=stack, dry_run=False, timeout=120)
    assert preview.pack_name == "ps019" and preview.pack_version == info["version"]
    assert preview.stack_analyzed and update.stack_analyzed and not update.failed
    assert {p.name for p in preview.policies} >= {"PS019-GATE-001", "ps019-settings"}
    kinds = sorted(s.record.kind.value for s in evidence_store.query(stack=str(stack)))
    assert kinds == ["preview", "update"]


def test_the_built_pack_publishes_its_own_files_and_not_its_venv(built_pack, tmp_path, capsys):
    """`pulumi policy publish` archives the pack directory skipping every file that a .gitignore in the pack OR IN ANY
    DIRECTORY ABOVE IT ignores (pulumi sdk/go/common/util/archive: TGZ, addDirectoryToTar). Two traps a new user fell
    into: the documented `--out dist/ps019-pack` sits under this repository's `dist/` rule, so the published pack would
    hold none of its files; and outside a repository nothing ignored the `venv/` that `pulumi install` (the build's
    suggested next step) creates, so ~180 MB of virtualenv would be published. The built pack now carries a .gitignore
    for venv/ (as Pulumi's own Python pack layout does), and the build warns when a .gitignore above the pack ignores
    it."""
    from ps019.cli import main

    ignore = (built_pack / ".gitignore").read_text().splitlines()
    assert "venv/" in ignore and "__pycache__/" in ignore
    [wheel] = (built_pack / "wheels").glob("ps019-*.whl")

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitignore").write_text("# build output\n.venv/\ndist/\n")
    for out, warned in ((repo / "dist" / "ps019-pack", True), (tmp_path / "elsewhere" / "ps019-pack", False)):
        with pytest.raises(SystemExit) as exit_info:
            main(["pack", "build", "--out", str(out), "--wheel", str(wheel)])
        said = capsys.readouterr()
        assert exit_info.value.code == 0, said.err
        if warned:
            assert "warning:" in said.err and f"{repo / '.gitignore'}" in said.err and "'dist/'" in said.err
            assert "pulumi policy publish" in said.err
        else:
            assert "warning:" not in said.err, said.err
