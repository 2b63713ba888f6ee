"""Outputs of other stacks, for a program's ``pulumi.StackReference``, read offline.

``--stack-reference NAME=FILE``: FILE is either what ``pulumi stack output --json --show-secrets`` prints (an object
of output names to values) or a ``pulumi stack export`` (the outputs of its ``pulumi:pulumi:Stack`` resource; a
``ciphertext`` secret cannot be decrypted offline and is refused). NAME is the stack name exactly as the program
passes it to ``StackReference`` (``org/project/stack``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ps019.engine.values import SECRET_SIG, SIG_KEY
from ps019.errors import InputError


def load_stack_reference(path: str | Path) -> dict[str, Any]:
    """The outputs in ``path`` as wire values (secrets keep the secret signature)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"stack reference file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"stack reference file {path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise InputError(f"stack reference file {path} must be a JSON object (`pulumi stack output --json`) or a "
                         f"stack export")
    deployment = document.get("deployment") if "deployment" in document else None
    if deployment is None and isinstance(document.get("checkpoint"), dict):
        deployment = document["checkpoint"].get("latest")
    if isinstance(deployment, dict) and isinstance(deployment.get("resources"), list):
        stack = next((r for r in deployment["resources"] if r.get("type") == "pulumi:pulumi:Stack"), None)
        outputs = (stack or {}).get("outputs") or {}
        return {k: _decode(v, path, k) for k, v in outputs.items()}
    return dict(document)


def _decode(value: Any, path: Any, key: str) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            if "plaintext" in value:
                return {SIG_KEY: SECRET_SIG, "value": json.loads(value["plaintext"])}
            if "ciphertext" in value:
                raise InputError(f"stack reference file {path}: output {key!r} is an encrypted secret that cannot be "
                                 f"decrypted offline; export it with --show-secrets")
            return value
        return {k: _decode(v, path, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, path, key) for v in value]
    return value


def parse_stack_reference_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--stack-reference {pair!r}: expected NAME=FILE (NAME as the program passes it to "
                             f"StackReference)")
        out[name.strip()] = load_stack_reference(path.strip())
    return out
