"""Every command shown in README.md and docs/ runs as written on a fresh clone.

The fenced shell blocks (```bash, ```sh, ```shell, ```console) of README.md and docs/*.md are extracted; each
``ps019 ...`` command in them runs in a copy of the repository's files (no build output, no .venv, no evidence from
other tests), from the copy's root, with a throwaway HOME and evidence store, in the order the page shows them (a page's
later commands may use what its earlier ones wrote, as a reader following it would). A command passes when it exits 0 —
or 1 for the commands whose exit status 1 means "the check ran and found something" — and prints no traceback.

Commands that cannot run here are skipped by rule or by the explicit SKIP list below, each with its reason:
- not ``ps019`` (``pulumi`` needs the Pulumi CLI and a backend; ``pip``/``bash scripts/*``/benchmarks change or
  measure the machine and have their own tests or CI run);
- a template: it contains a placeholder (``...``, ``…``, ``<run id>``, ``$VAR`` the page never sets).
Adding a doc needs no change here unless one of its commands cannot run offline; then add it to SKIP with a reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console"}

# (page, regex on the command) -> why it cannot run offline here. Keep each entry commented with its reason.
SKIP: dict[tuple[str, str], str] = {
    # Needs AWS STS (the opener's verified identity) and an S3 store: the runbook's own flow is tested in
    # tests/test_breakglass_cli.py against moto.
    ("docs/break-glass-runbook.md", r"."): "needs AWS STS and an S3 evidence store (tested against moto elsewhere)",
    # Signing an approval needs the approver's key trusted in the pack config first (the security team adds the entry
    # `ps019 keygen` prints); `approve` refuses an untrusted key. The flow is tested in tests/test_gate_cli.py.
    ("README.md", r"^ps019 approve "): "needs the approver's key in the pack config's trusted keys",
    ("docs/gate.md", r"^ps019 approve "): "needs the approver's key in the pack config's trusted keys",
    ("docs/ci-approvals-guide.md", r"^ps019 approve "): "needs the approver's key in the pack config's trusted keys",
    # An S3 store: the exceptions flow is covered by tests/test_exceptions_*.py against moto.
    ("docs/exceptions.md", r"--store s3://"): "needs an S3 evidence store",
}

# Commands whose exit status 1 means the check ran and found violations (documented as such).
FINDING_COMMANDS = ("ps019 analyze", "ps019 up", "ps019 iam check", "ps019 verify", "ps019 evidence verify")

_PLACEHOLDER = re.compile(r"\.\.\.|…|<[a-z][a-z ]*>")


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks(path: Path):
    lang, start, lines = None, 0, []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)", raw)
        if fence and lang is None:
            lang, start, lines = fence.group(1) or "text", number, []
        elif fence:
            yield lang, start, lines
            lang = None
        elif lang is not None:
            lines.append((number, raw))


def _commands(page: str, lang: str, lines: list[tuple[int, str]]):
    pending: tuple[int, str] | None = None
    for number, raw in lines:
        text = raw.rstrip()
        if lang == "console":
            if pending is None:
                if not text.startswith("$ "):
                    continue  # output shown under a command
                text = text[2:]
        elif pending is None and (not text.strip() or text.lstrip().startswith("#")):
            continue
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.strip()
        if text.endswith("\\"):
            pending = (number, text[:-1].rstrip())
            continue
        pending = None
        yield DocCommand(page, number, text.strip())


def doc_commands() -> list[DocCommand]:
    pages = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    found = []
    for path in pages:
        page = str(path.relative_to(ROOT))
        for lang, _, lines in _blocks(path):
            if lang in SHELL_LANGS:
                found.extend(_commands(page, lang, lines))
    return found


def skip_reason(command: DocCommand, exported: set[str]) -> str | None:
    for (page, pattern), reason in SKIP.items():
        if command.page == page and re.search(pattern, command.text):
            return reason
    words = command.text.split()
    program = words[0] if words else ""
    if program == "export" or re.match(r"^[A-Z_]+=\S*$", program) and len(words) == 1:
        return None  # an assignment the page's later commands use
    if program != "ps019":
        return f"{program} is not ps019 (the Pulumi CLI, pip, scripts and benchmarks are not run by this test)"
    if _PLACEHOLDER.search(command.text):
        return "a template with placeholders"
    for var in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", command.text):
        if var not in exported:
            return f"uses ${var}, which the page does not set"
    return None


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """The repository's files as a fresh clone has them (tracked and new files, nothing ignored or built)."""
    clone = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = clone / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # A clone is a git work tree: pages use `git rev-parse HEAD` for the commit being deployed.
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "clone"], cwd=clone, check=True)
    return clone


def _pages() -> dict[str, list[DocCommand]]:
    pages: dict[str, list[DocCommand]] = {}
    for command in doc_commands():
        pages.setdefault(command.page, []).append(command)
    return pages


def test_the_extractor_finds_the_readme_commands():
    texts = [c.text for c in doc_commands() if c.page == "README.md"]
    assert any(t.startswith("ps019 analyze --state examples/web-service/stack-export.prod.json") for t in texts)
    # continuation lines are joined into one command
    assert any("--format sarif --secret-config deploySecretAccessKey=example-only" in " ".join(t.split())
               for t in texts)


def _environment(home: Path) -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PS019_", "PULUMI_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"), PATH=f"{bin_dir}:{env.get('PATH', '')}",
               AWS_EC2_METADATA_DISABLED="true", COLUMNS="120")
    return env


@pytest.fixture(scope="module")
def reader_home(fresh_clone, tmp_path_factory) -> Path:
    """The HOME of a reader who has run the README's first analysis: the default evidence store has records, so
    pages about querying and verifying it have something to show."""
    home = tmp_path_factory.mktemp("reader-home")
    proc = subprocess.run(["ps019", "analyze", "--state", "examples/web-service/stack-export.dev.json", "--stack",
                           "acme/web-service/dev"], cwd=fresh_clone, env=_environment(home), capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode in (0, 1), proc.stderr
    return home


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(_pages()))
def test_every_documented_command_runs_as_written(page, fresh_clone, reader_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(reader_home, home)
    env = _environment(home)
    exported: set[str] = set()
    prelude: list[str] = []
    ran, failures = 0, []
    for command in _pages()[page]:
        if skip_reason(command, exported) is not None:
            continue
        words = command.text.split()
        if words[0] == "export" or re.match(r"^[A-Z_]+=\S*$", words[0]) and len(words) == 1:
            assignment = command.text.removeprefix("export ").split("#")[0].strip()
            exported.add(assignment.split("=", 1)[0])
            prelude.append(f"export {assignment}")
            continue
        script = "\n".join(prelude + [command.text])
        proc = subprocess.run(["bash", "-c", script], cwd=fresh_clone, env=env, capture_output=True, text=True,
                              timeout=180)
        ran += 1
        allowed = {0, 1} if command.text.startswith(FINDING_COMMANDS) else {0}
        output = proc.stdout + proc.stderr
        if proc.returncode not in allowed or "Traceback (most recent call last)" in output:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            failures.append(f"{command.id}: exit {proc.returncode}: {command.text}\n    {tail}")
    assert not failures, "documented commands that do not run as written:\n" + "\n".join(failures)
    if ran == 0:
        pytest.skip(f"{page} shows no ps019 command that can run offline")
