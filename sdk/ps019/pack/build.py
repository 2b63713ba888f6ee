"""``ps019 pack build``: a self-contained policy pack directory, ready for ``pulumi policy publish``.

A published (or Pulumi Cloud-enforced) pack is unpacked on its own, with no repository around it, and the CLI
installs it the way it installs any Python pack: ``python -m venv <pack>/venv``, ``pip install --upgrade pip setuptools
wheel``, then ``pip install -r requirements.txt`` with the working directory at the pack (pulumi
``sdk/python/toolchain/pip.go``). So the built pack carries the ps019 wheel itself and its requirements.txt installs it
by a path relative to the pack; every other dependency comes from the package index as declared by the wheel.

The pack digest is SHA-256 over every file of the pack (relative path and content, sorted), the same whoever builds
the same sources; it is printed, and written with the wheel's digest to ``BUILD-INFO.json`` (not itself digested).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ps019.errors import InputError

WHEEL_DIR = "wheels"
BUILD_INFO = "BUILD-INFO.json"
# Written by the CLI when the pack is installed or run; never part of the published pack.
_NOT_PACK_FILES = {BUILD_INFO, "venv", ".venv", "__pycache__", "node_modules"}

# `pulumi policy publish` archives the pack directory, skipping what a .gitignore ignores; without this the venv/ that
# `pulumi install` creates would be published with the pack (Pulumi's own Python pack layout ignores it the same way).
PACK_GITIGNORE = "venv/\n__pycache__/\n*.pyc\n"

MAIN_PY = '''"""The ps019 policy pack (built by `ps019 pack build`): every policy comes from the ps019 wheel in wheels/."""

from pathlib import Path

from ps019.pack import serve

serve(Path(__file__).resolve().parent)
'''


@dataclass(frozen=True)
class BuiltPack:
    directory: Path
    wheel: Path
    digest: str
    wheel_sha256: str
    version: str


def source_root() -> Path:
    """The ps019 source tree this SDK runs from (a checkout: pyproject.toml beside sdk/)."""
    import ps019

    root = Path(ps019.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "policypacks" / "ps019" / "PulumiPolicy.yaml").is_file():
        raise InputError(f"ps019 pack build needs the ps019 source tree (pyproject.toml and policypacks/ps019); "
                         f"{root} is not one")
    return root


def pack_digest(directory: Path) -> str:
    """SHA-256 over (relative path, SHA-256 of content) of every file of the pack, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(_pack_files(directory)):
        rel = path.relative_to(directory).as_posix()
        digest.update(f"{rel}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _pack_files(directory: Path) -> list[Path]:
    out = []
    for path in directory.rglob("*"):
        parts = path.relative_to(directory).parts
        if path.is_file() and not (set(parts) & _NOT_PACK_FILES):
            out.append(path)
    return out


def build_wheel(root: Path, outdir: Path) -> Path:
    """``python -m build --wheel`` of the source tree (an isolated build environment, as a release would)."""
    try:
        import build  # noqa: F401 - only checks that the build frontend is installed
    except ImportError:
        raise InputError("ps019 pack build needs the `build` package (pip install build)") from None
    with tempfile.TemporaryDirectory(prefix="ps019-wheel-") as tmp:
        # Build from a clean copy: setuptools keeps build/ and *.egg-info in the source tree, and a stale build/lib
        # would put files deleted from sdk/ into the wheel.
        source = Path(tmp) / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copy2(root / name, source / name)
        shutil.copytree(root / "sdk", source / "sdk",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        dist = Path(tmp) / "dist"
        proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise InputError(f"building the ps019 wheel failed: {last[0][:300]}")
        wheels = sorted(dist.glob("ps019-*.whl"))
        if len(wheels) != 1:
            raise InputError(f"building the ps019 wheel produced {len(wheels)} wheels, expected 1")
        outdir.mkdir(parents=True, exist_ok=True)
        target = outdir / wheels[0].name
        shutil.copy2(wheels[0], target)
        return target


def pack_project_yaml(source: Path) -> str:
    """The source pack's PulumiPolicy.yaml: its runtime options already say venv + pip, which is what a published
    pack needs (the CLI gives analyzers no default virtualenv)."""
    return (source / "PulumiPolicy.yaml").read_text(encoding="utf-8")


def build_pack(out: Path, *, wheel: Path | None = None, force: bool = False) -> BuiltPack:
    """Write the pack to ``out`` (created; must be empty unless ``force``). ``wheel``: use this wheel instead of
    building one (tests build it once)."""
    root = source_root()
    source_pack = root / "policypacks" / "ps019"
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"{out} is not empty (use --force to replace its pack files)")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    wheels = out / WHEEL_DIR
    if wheels.exists():
        shutil.rmtree(wheels)
    if wheel is None:
        wheel = build_wheel(root, wheels)
    else:
        wheels.mkdir(parents=True)
        wheel = Path(shutil.copy2(wheel, wheels / Path(wheel).name))
    version = wheel.name.split("-")[1]
    (out / "PulumiPolicy.yaml").write_text(pack_project_yaml(source_pack), encoding="utf-8")
    (out / "__main__.py").write_text(MAIN_PY, encoding="utf-8")
    (out / "requirements.txt").write_text(
        "# The ps019 SDK, vendored: pip resolves this path against the pack directory, which is where the Pulumi CLI\n"
        "# runs `pip install -r requirements.txt`. Its dependencies come from the package index.\n"
        f"./{WHEEL_DIR}/{wheel.name}\n", encoding="utf-8")
    (out / "README.md").write_text(_readme(version, wheel.name), encoding="utf-8")
    (out / ".gitignore").write_text(PACK_GITIGNORE, encoding="utf-8")
    example = source_pack / "config.example.json"
    if example.is_file():
        shutil.copy2(example, out / "config.example.json")
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    digest = pack_digest(out)
    (out / BUILD_INFO).write_text(json.dumps({
        "pack": "ps019", "version": version, "pack_digest": f"sha256:{digest}",
        "wheel": f"{WHEEL_DIR}/{wheel.name}", "wheel_sha256": f"sha256:{wheel_sha}", "git_commit": _git_commit(root),
    }, indent=2) + "\n", encoding="utf-8")
    return BuiltPack(out, wheel, digest, wheel_sha, version)


def publish_exclusions(directory: Path) -> list[tuple[Path, str]]:
    """The (.gitignore, pattern) pairs above ``directory`` that ignore it, so that ``pulumi policy publish`` would leave
    its files out: the CLI's archive (pulumi sdk/go/common/util/archive, TGZ) applies every .gitignore from the pack
    up to the filesystem root, with go-gitignore's matching, where a pattern without a leading "/" matches at any depth
    and a directory pattern ignores everything below it. Negations cannot rescue a file there (any ignoring file
    wins), so they are not read. This covers the usual name and glob patterns; it is a warning, not the CLI itself."""
    import fnmatch

    directory = directory.resolve()
    found: list[tuple[Path, str]] = []
    for base in directory.parents:
        ignore = base / ".gitignore"
        if not ignore.is_file():
            continue
        try:
            lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        parts = directory.relative_to(base).parts
        for line in lines:
            pattern = line.strip()
            if not pattern or pattern.startswith(("#", "!")):
                continue
            names = [n for n in pattern.strip("/").split("/") if n]
            if not names or "**" in names:
                continue
            starts = [0] if pattern.startswith("/") else range(len(parts) - len(names) + 1)
            if any(all(fnmatch.fnmatchcase(parts[i + k], n) for k, n in enumerate(names)) for i in starts):
                found.append((ignore, pattern))
    return found


def _git_commit(root: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _readme(version: str, wheel: str) -> str:
    return f"""# ps019 policy pack {version}

PS-019 secure change management for Pulumi: the production change gate (change requests with signed approvals,
break-glass, separation of duties), least-privilege IAM and deploy-identity checks, and a signed, hash-chained
evidence record of every preview and update. Every policy is a ps019 control; the catalogue with each control's
clause, parameters and fix is docs/controls.md of the ps019 repository.

This directory is self-contained: `requirements.txt` installs the vendored SDK (`{WHEEL_DIR}/{wheel}`), and
`PulumiPolicy.yaml` tells the Pulumi CLI to install it into `venv/` with pip.

    pulumi install                        # in this directory: creates venv/ and installs requirements.txt
    pulumi preview --policy-pack . --policy-pack-config config.json
    pulumi policy publish [ORG]           # Pulumi Cloud: then enable it in a policy group
    pulumi policy validate-config ORG/ps019 {version} --config config.json

`config.example.json` is a TEMPLATE for the policy pack config: its keys, store URL and key file are examples. Copy it,
replace them with your organisation's, and check it with `ps019 pack validate-config FILE`.
`BUILD-INFO.json` records the pack digest (SHA-256 over every other file here) and the wheel's digest.
"""
