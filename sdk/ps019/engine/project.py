"""A Pulumi project directory as the CLI reads it: ``Pulumi.yaml`` (name, runtime, ``main``, project ``config:``).

* ``main`` (pulumi ``pkg/cmd/pulumi``'s ``getPwdMain``): a directory becomes the program's working directory and
  the program is ``.`` (its ``__main__.py``); a file is run as the program with the project root as the working
  directory. It must stay inside the project.
* ``config:`` (``sdk/go/common/workspace`` ``ValidateStackConfigAndApplyProjectConfig``): each key is declared
  either as a plain value (``aws:region: us-west-2``) or as ``{type, default, value, description, secret, items}``.
  A key the stack does not set takes the declared ``value`` or ``default``; an explicitly typed key with neither is
  an error (``Stack 'dev' is missing configuration value 'x'``); a stack value of the wrong type is an error.
  Bare keys belong to the project's namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ps019.errors import InputError

_TYPES = {"string", "integer", "boolean", "array", "object"}


@dataclass(frozen=True)
class ConfigDeclaration:
    key: str  # "ns:key"
    type: str | None  # None: not explicitly typed
    value: Any = None
    has_value: bool = False
    secret: bool = False


@dataclass
class PulumiProject:
    directory: Path
    name: str
    runtime: str
    cwd: Path  # where the program runs
    program: Path  # the file the language host runs (a directory's __main__.py)
    config: list[ConfigDeclaration] = field(default_factory=list)


def project_file(directory: Path) -> Path:
    for candidate in ("Pulumi.yaml", "Pulumi.yml"):
        if (directory / candidate).is_file():
            return directory / candidate
    raise InputError(f"{directory} is not a Pulumi program: it has no Pulumi.yaml")


def read_project(directory: str | Path) -> PulumiProject:
    directory = Path(directory).resolve()
    path = project_file(directory)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise InputError(f"{path} is not a mapping")
    runtime = document.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    name = str(document.get("name") or "")
    cwd, program = _pwd_main(directory, document.get("main"), path)
    return PulumiProject(directory, name, str(runtime_name), cwd, program,
                         _declarations(name, document.get("config"), path))


def _pwd_main(root: Path, main: Any, path: Path) -> tuple[Path, Path]:
    if main in (None, "", "."):
        return root, root / "__main__.py"
    main_text = str(main)
    if Path(main_text).is_absolute():
        raise InputError(f"{path}: project 'main' must be a relative path")
    target = (root / main_text).resolve()
    if target != root and root not in target.parents:
        raise InputError(f"{path}: project 'main' must be a subfolder")
    if target.is_dir():
        return target, target / "__main__.py"
    return root, target


def _declarations(project: str, raw: Any, path: Path) -> list[ConfigDeclaration]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise InputError(f"{path}: 'config' is not a mapping")
    out = []
    for key, spec in raw.items():
        full = key if ":" in str(key) else f"{project}:{key}"
        if str(full).startswith("pulumi:"):
            continue  # the CLI's own namespace (pulumi:tags, ...) is not program config
        if isinstance(spec, dict) and (set(spec) & {"type", "default", "value", "description", "secret", "items"}):
            typ = spec.get("type")
            if typ is not None and typ not in _TYPES:
                raise InputError(f"{path}: config {key!r} has type {typ!r}; expected one of {sorted(_TYPES)}")
            if "value" in spec:
                out.append(ConfigDeclaration(full, typ, spec["value"], True, bool(spec.get("secret"))))
            elif "default" in spec:
                out.append(ConfigDeclaration(full, typ, spec["default"], True, bool(spec.get("secret"))))
            else:
                out.append(ConfigDeclaration(full, typ, None, False, bool(spec.get("secret"))))
        else:  # short form: the value itself
            out.append(ConfigDeclaration(full, None, spec, True))
    return out


def _check_type(decl: ConfigDeclaration, value: Any, stack: str) -> None:
    if decl.type is None or value is None:
        return
    text = value if isinstance(value, str) else json.dumps(value)
    ok = True
    if decl.type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, str) and
                                                                        value.strip().lstrip("-").isdigit())
    elif decl.type == "boolean":
        ok = isinstance(value, bool) or (isinstance(value, str) and value in ("true", "false"))
    elif decl.type == "array":
        ok = isinstance(value, list) or (isinstance(value, str) and text.strip().startswith("["))
    if not ok:
        raise InputError(f"Stack '{stack}' with configuration key '{decl.key.split(':', 1)[1]}' must be of type "
                         f"'{decl.type}'")


def apply_project_config(project: PulumiProject, stack: str, config: Mapping[str, Any],
                         supplied_secret_keys: set[str] = frozenset()) -> dict[str, Any]:
    """The stack config after the project's declarations: defaults filled in, types checked, missing required
    values reported as the CLI reports them. ``config`` maps ``ns:key`` to values."""
    merged = dict(config)
    missing = []
    for decl in project.config:
        present = decl.key in merged or decl.key in supplied_secret_keys
        if present:
            _check_type(decl, merged.get(decl.key), stack)
            continue
        if decl.has_value:
            merged[decl.key] = decl.value
        elif decl.type is not None:
            missing.append(decl.key.split(":", 1)[1] if decl.key.startswith(project.name + ":") else decl.key)
    if missing:
        noun = "value" if len(missing) == 1 else "values"
        raise InputError(f"Stack '{stack}' is missing configuration {noun} "
                         f"{', '.join(repr(k) for k in missing)}")
    return merged
