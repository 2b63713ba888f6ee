"""The change request: what a pipeline presents to the gate for one production change, and the signed approvals.

An approval's signature covers the canonical JSON (RFC 8785) of::

    {"change_request": <the whole change request except "approvals", as normalised by this model>,
     "approver": ..., "role": ..., "signed_at": ..., "expires_at": ...}

with the purpose ``ps019/change-approval/v1``. The body names the stacks, the git commit and (optionally) the plan
digest, so an approval for other content, another stack or another commit does not verify, and an approval can not be
moved from one change request to another.

How the pack finds the file (first that is set wins):

1. environment variable ``PS019_CHANGE_REQUEST`` = path (set by the pipeline step that runs ``pulumi up``);
2. stack config ``ps019:changeRequest`` = path.

Use absolute paths: the engine starts the pack with the pack directory as working directory, so a relative path is
resolved against ``$PWD`` inherited from the Pulumi CLI (the directory ``pulumi`` was run in), else the pack's cwd.
The file may be JSON or YAML.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Mapping

import pydantic
import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ps019.gate.signing import PURPOSE_APPROVAL

ENV_VAR = "PS019_CHANGE_REQUEST"
CONFIG_KEY = "ps019:changeRequest"
SCHEMA_ID = "https://ps019.dev/schemas/change-request.schema.json"
MAX_FILE_BYTES = 1_000_000

_COMMIT = r"^[0-9a-f]{40}([0-9a-f]{24})?$"
_DIGEST = r"^sha256:[0-9a-f]{64}$"
_STACK = r"^[^/\s]+/[^/\s]+/[^/\s]+$"


class _Strict(BaseModel):
    # extra="forbid": anything not in the model would be unsigned (the signature covers the normalised model), so an
    # unknown field is an error rather than silently ignored text.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Artifact(_Strict):
    git_commit: str = Field(pattern=_COMMIT, description="full git commit SHA (40 hex, or 64 for SHA-256 repos)")
    plan_digest: str | None = Field(
        None, pattern=_DIGEST, description="sha256:<hex> of the `pulumi preview --save-plan` file, when used"
    )


class Approval(_Strict):
    approver: str = Field(min_length=1, description="identity of the approver (must match their trusted key)")
    role: str = Field(min_length=1, description="role claimed, e.g. approver or security")
    signed_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    key_id: str = Field(pattern=r"^ed25519:[0-9a-f]{16,64}$")
    signature: str = Field(min_length=1, description="base64 Ed25519 signature")


class ChangeRequest(_Strict):
    """A request to change one or more stacks to one artifact. Everything but ``approvals`` is signed."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"$id": SCHEMA_ID, "title": "ps019 change request"},
    )

    version: Literal[1] = 1
    ticket: str = Field(min_length=1, description="change ticket ID (pattern set by gate.ticket_pattern)")
    change_class: Literal["standard", "normal", "emergency"]
    summary: str = Field(min_length=1)
    owner: str = Field(min_length=1, description="owning team")
    author: str = Field(min_length=1, description="identity of the change author")
    artifact: Artifact
    stacks: list[str] = Field(min_length=1, description="fully qualified stacks: org/project/stack")
    runbook_id: str | None = Field(None, description="pre-approved runbook/template ID (standard changes)")
    test_evidence: str | None = Field(None, description="link to the CI run / test results for this commit")
    security_review: str | None = Field(None, description="security review reference")
    rollback_plan: str | None = Field(None, description="rollback plan reference")
    monitoring_plan: str | None = Field(None, description="monitoring / post-release verification reference")
    created_at: AwareDatetime | None = None
    expires_at: AwareDatetime
    approvals: list[Approval] = Field(default_factory=list)

    @field_validator("stacks")
    @classmethod
    def _stacks(cls, value: list[str]) -> list[str]:
        for i, stack in enumerate(value):
            if not re.match(_STACK, stack):
                raise ValueError(f"entry [{i}] {stack!r} is not a fully qualified org/project/stack")
        return value

    def body(self) -> dict[str, Any]:
        """The signed part: everything except approvals, normalised (UTC 'Z' times, defaults filled)."""
        return self.model_dump(mode="json", exclude={"approvals"})


def request_digest(request: "ChangeRequest") -> str:
    """``sha256:<hex>`` of the signed body (RFC 8785): what single-use and the evidence record name the request by."""
    import hashlib

    from ps019.gate.signing import canonical_json

    return "sha256:" + hashlib.sha256(canonical_json(request.body())).hexdigest()


def approval_payload(body: Mapping[str, Any], approver: str, role: str, signed_at: datetime,
                     expires_at: datetime | None) -> dict[str, Any]:
    """The object an approval signature covers (see the module docstring)."""
    adapter = pydantic.TypeAdapter(AwareDatetime)
    return {
        "change_request": dict(body),
        "approver": approver,
        "role": role,
        "signed_at": adapter.dump_python(signed_at, mode="json"),
        "expires_at": adapter.dump_python(expires_at, mode="json") if expires_at is not None else None,
    }


def payload_for(request: ChangeRequest, approval: Approval) -> dict[str, Any]:
    return approval_payload(request.body(), approval.approver, approval.role, approval.signed_at, approval.expires_at)


APPROVAL_PURPOSE = PURPOSE_APPROVAL


# --- loading and precise messages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRequestSource:
    """What the loader found: the bytes, or why there are none. ``origin`` says where the path came from."""

    origin: str  # "env PS019_CHANGE_REQUEST" | "stack config ps019:changeRequest" | "none"
    path: str | None = None
    data: bytes | None = None
    error: str | None = None

    @property
    def presented(self) -> bool:
        return self.path is not None


def locate(environ: Mapping[str, str], stack_config: Mapping[str, str]) -> ChangeRequestSource:
    if environ.get(ENV_VAR):
        return ChangeRequestSource(origin=f"env {ENV_VAR}", path=environ[ENV_VAR])
    if stack_config.get(CONFIG_KEY):
        return ChangeRequestSource(origin=f"stack config {CONFIG_KEY}", path=stack_config[CONFIG_KEY])
    return ChangeRequestSource(origin="none")


def load_change_request(environ: Mapping[str, str], stack_config: Mapping[str, str]) -> ChangeRequestSource:
    """The edge the pack adapter calls once per run: find the file and read its bytes (never raises)."""
    source = locate(environ, stack_config)
    if source.path is None:
        return source
    path = Path(source.path).expanduser()
    if not path.is_absolute():
        path = Path(environ.get("PWD") or os.getcwd()) / path
    shown = f"{path} (from {source.origin})"
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return ChangeRequestSource(source.origin, str(path), error=f"{shown}: file is {size} bytes, over the "
                                                                          f"{MAX_FILE_BYTES}-byte limit")
        data = path.read_bytes()
    except FileNotFoundError:
        return ChangeRequestSource(source.origin, str(path), error=f"{shown}: no such file")
    except IsADirectoryError:
        return ChangeRequestSource(source.origin, str(path), error=f"{shown}: is a directory, not a file")
    except PermissionError:
        return ChangeRequestSource(source.origin, str(path), error=f"{shown}: permission denied")
    except OSError as exc:
        return ChangeRequestSource(source.origin, str(path), error=f"{shown}: cannot read ({exc.strerror})")
    return ChangeRequestSource(source.origin, str(path), data=data)


class DuplicateKey(ValueError):
    pass


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads`` that refuses a repeated key (raises :class:`DuplicateKey`)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(f"duplicate key {key!r}")
        out[key] = value
    return out


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKey(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_document(data: bytes) -> tuple[Any, str | None]:
    """JSON, else YAML; returns (document, error). Duplicate keys are refused: with last-wins parsing a reviewer
    reading the file and the gate could see different values."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start})"
    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys), None
    except DuplicateKey as exc:
        return None, f"not a usable JSON document: {exc}"
    except RecursionError:
        return None, "not a usable JSON document: nested too deeply"
    except json.JSONDecodeError as json_error:
        if text.lstrip().startswith(("{", "[")):
            return None, f"not valid JSON: {json_error.msg} at line {json_error.lineno} column {json_error.colno}"
    try:
        return yaml.load(text, Loader=_StrictYamlLoader), None  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as exc:
        return None, f"not a usable YAML document: {exc}"
    except RecursionError:
        return None, "not a usable YAML document: nested too deeply"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        return None, f"neither JSON nor YAML: {getattr(exc, 'problem', None) or exc}{where}"


def render_location(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def render_errors(exc: pydantic.ValidationError) -> list[str]:
    """``approvals[1].signature: field required`` — one line per problem, never a traceback."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = render_location(tuple(p for p in err.get("loc", ()) if p not in ("function-after", "function-before")))
        msg = err.get("msg", "invalid")
        msg = msg[:1].lower() + msg[1:]
        if msg.startswith("value error, "):
            msg = msg[len("value error, "):]
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (not part of the change request schema; it would not be covered by signatures)"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return lines


def parse_change_request(data: bytes | Mapping[str, Any]) -> tuple[ChangeRequest | None, list[str]]:
    """Bytes (JSON or YAML) or a parsed mapping → (model, []) or (None, precise problems)."""
    if isinstance(data, (bytes, bytearray)):
        document, error = parse_document(bytes(data))
        if error:
            return None, [error]
    else:
        document = data
    if not isinstance(document, Mapping):
        return None, [f"the document must be a mapping (object), not {type(document).__name__}"]
    try:
        return ChangeRequest.model_validate(document), []
    except pydantic.ValidationError as exc:
        return None, render_errors(exc)


def content_problems(request: ChangeRequest, ticket_pattern: str) -> list[str]:
    """Checks that need the gate settings (the schema cannot know the ticket pattern)."""
    problems = []
    if not re.search(ticket_pattern, request.ticket):
        problems.append(f"ticket: {request.ticket!r} does not match the required pattern {ticket_pattern}")
    if request.created_at and request.created_at > request.expires_at:
        problems.append("expires_at: is before created_at")
    for name, value in request.model_dump(mode="json", exclude={"approvals"}).items():
        for text in (value if isinstance(value, list) else [value]):
            if isinstance(text, str) and text.strip().upper().startswith("TODO"):
                problems.append(f"{name}: still the template placeholder {text!r}")
    return problems


def required_field_problems(request: ChangeRequest, tier_rules: Any) -> list[str]:
    """Fields the tier's rules require for this change class (``gate.rules.<tier>.<class>.required_fields``)."""
    rule = getattr(tier_rules, request.change_class)
    return [f"{name}: required for a {request.change_class} change in this tier" for name in rule.required_fields
            if not getattr(request, name)]


def json_schema() -> dict[str, Any]:
    schema = ChangeRequest.model_json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def sign_approval(request: ChangeRequest, private_key: Any, *, approver: str, role: str, signed_at: datetime,
                  expires_at: datetime | None = None) -> Approval:
    """A new approval of ``request`` (its body as it is now) signed with ``private_key``."""
    from ps019.gate.signing import sign

    payload = approval_payload(request.body(), approver, role, signed_at, expires_at)
    signature = sign(payload, private_key, purpose=APPROVAL_PURPOSE)
    return Approval(approver=approver, role=role, signed_at=signed_at, expires_at=expires_at,
                    key_id=signature.key_id, signature=signature.value)
