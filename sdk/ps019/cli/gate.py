"""``ps019 keygen``, ``ps019 approve`` and ``ps019 change-request new|validate|schema``.

Exit status: 0 ok, 1 the document was checked and has problems, 2 unusable input (missing file, bad flag).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ps019.errors import InputError

_NOW_OVERRIDE = "PS019_NOW"  # tests only: a fixed ISO time for "now"


def _now() -> datetime:
    fixed = os.environ.get(_NOW_OVERRIDE)
    if fixed:
        return datetime.fromisoformat(fixed.replace("Z", "+00:00"))
    return datetime.now(timezone.utc).replace(microsecond=0)


CONFIG_ENV = "PS019_POLICY_PACK_CONFIG"


def _config_path(config_path: str | None) -> str | None:
    return config_path or os.environ.get(CONFIG_ENV) or None


def _read_settings(config_path: str | None) -> tuple[Any, Any]:
    """(GateSettings, EnvironmentSettings) from the pack config, or the built-in defaults when there is none: the same
    rules the gate applies. Unusable config (not JSON, duplicate keys, invalid section) is one line, exit 2."""
    from ps019.errors import validation_problems
    from ps019.gate.change_request import DuplicateKey, no_duplicate_keys
    from ps019.gate.settings import EnvironmentSettings, GateSettings

    raw: Any = {}
    if config_path:
        try:
            raw = json.loads(Path(config_path).read_bytes().decode("utf-8"), object_pairs_hook=no_duplicate_keys)
        except FileNotFoundError:
            raise InputError(f"{config_path}: no such file") from None
        except DuplicateKey as exc:
            raise InputError(f"{config_path}: not a usable policy pack config ({exc})") from None
        except (OSError, ValueError, RecursionError) as exc:
            raise InputError(f"{config_path}: not a readable JSON policy pack config "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
    settings = ((raw.get("ps019-settings") or {}) if isinstance(raw, dict) else {})
    if not isinstance(settings, dict):
        raise InputError(f"{config_path}: ps019-settings is not an object")
    out = []
    for name, model in (("gate", GateSettings), ("environments", EnvironmentSettings)):
        try:
            out.append(model.model_validate(settings.get(name) or {}))
        except Exception as exc:  # pydantic.ValidationError: one line
            errors = validation_problems(exc) if hasattr(exc, "errors") else [str(exc)]
            raise InputError(f"{config_path}: ps019-settings.{name}: " + "; ".join(errors)) from None
    return out[0], out[1]


def _load_gate_settings(config_path: str | None) -> Any:
    """The gate settings of the pack config (None without one)."""
    return _read_settings(config_path)[0] if config_path else None


def request_problems(request: Any, settings: Any, environments: Any, now: datetime) -> list[str]:
    """Everything the gate would refuse about the request itself, before any approval: the ticket pattern and
    template placeholders, expiry, the maximum lifetime, and the fields each stack's tier requires for its class."""
    from ps019.gate import change_request as crm
    from ps019.gate.settings import classify_environment

    problems = crm.content_problems(request, settings.ticket_pattern)
    if now > request.expires_at:
        problems.append(f"expires_at: the change request expired at {request.expires_at.isoformat()}")
    if request.created_at and request.created_at > now + settings.clock_skew:
        problems.append(f"created_at: {request.created_at.isoformat()} is in the future; a change request's lifetime "
                        "starts when it is written")
    start = request.created_at or now
    if request.expires_at - start > settings.max_change_request_lifetime:
        problems.append(f"expires_at: {request.expires_at.isoformat()} is more than the gate's maximum lifetime "
                        f"{settings.max_change_request_lifetime} after {'created_at' if request.created_at else 'now'} "
                        "(gate.maxChangeRequestLifetime)")
    for stack_ref in request.stacks:
        org, project, stack = (stack_ref.split("/") + ["", "", ""])[:3]
        tier, _ = classify_environment(org, project, stack, {}, {}, environments)
        rules = settings.rules_for(tier, environments.unknown_treated_as)
        problems += [f"{p.replace('in this tier', f'in {tier} ({stack_ref})')}"
                     for p in crm.required_field_problems(request, rules)]
    return list(dict.fromkeys(problems))


def _parse_request(path: Path) -> tuple[Any, list[str]]:
    """(request, field problems); a file that is not a JSON/YAML document at all is unusable input (exit 2)."""
    from ps019.gate import change_request as crm

    data = _read_request_file(path)
    if len(data) > crm.MAX_FILE_BYTES:
        raise InputError(f"{path}: {len(data)} bytes, over the {crm.MAX_FILE_BYTES}-byte limit")
    try:
        document, error = crm.parse_document(data)
    except RecursionError:
        document, error = None, "nested too deeply"
    if error:
        raise InputError(f"{path}: {error}")
    return crm.parse_change_request(document if isinstance(document, dict) else data)


def _read_request_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def _write_document(path: Path, document: dict, as_yaml: bool) -> None:
    import yaml

    text = yaml.safe_dump(document, sort_keys=False) if as_yaml else json.dumps(document, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic: a reader never sees half a change request


def _is_yaml(path: Path, data: bytes) -> bool:
    return path.suffix.lower() in {".yaml", ".yml"} or not data.lstrip().startswith(b"{")


# --- keygen ---------------------------------------------------------------------------------------------------------


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="directory for the key files")
@click.option("--identity", required=True, help="who will hold the key, e.g. alice@example.com")
@click.option("--name", default=None, help="file name stem (default: derived from the identity)")
@click.option("--role", "roles", multiple=True, default=("approver",), show_default=True,
              help="roles to put in the printed trusted_keys entry (repeatable)")
def keygen(out_dir: str, identity: str, name: str | None, roles: tuple[str, ...]) -> None:
    """Create an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub (base64), and print the
    trusted_keys entry the security team adds to the pack config."""
    from ps019.gate import signing

    from ps019.cli.outfile import prepare_directory

    stem = name or re.sub(r"[^A-Za-z0-9._-]+", "_", identity).strip("_") or "key"
    directory = prepare_directory(out_dir)
    key = signing.generate_private_key()
    private_path, public_path = signing.write_keypair(key, directory, stem)
    entry = {"publicKey": signing.public_key_text(key), "identity": identity, "roles": list(roles)}
    click.echo(f"private key: {private_path} (mode 0600; keep it secret)", err=True)
    click.echo(f"public key:  {public_path}", err=True)
    click.echo(f"key id:      {signing.key_id(key)}", err=True)
    click.echo("add to ps019-settings.gate.trustedKeys in the policy pack config:", err=True)
    click.echo(json.dumps(entry, indent=2))


# --- change-request -------------------------------------------------------------------------------------------------


@click.group(name="change-request")
def change_request() -> None:
    """Create, validate and describe change requests (what a pipeline presents to the production gate)."""


def _git_head() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@change_request.command(name="new")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="file to write (.json/.yaml)")
@click.option("--ticket", default="TODO-0")
@click.option("--class", "change_class", type=click.Choice(["standard", "normal", "emergency"]), default="normal",
              show_default=True)
@click.option("--summary", default="TODO: what changes and why")
@click.option("--owner", default="TODO: owning team")
@click.option("--author", default="TODO: author identity")
@click.option("--stack", "stacks", multiple=True, help="org/project/stack (repeatable)")
@click.option("--commit", default=None, help="git commit to deploy (default: PS019_GIT_COMMIT, else git HEAD)")
@click.option("--plan-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="`pulumi preview --save-plan` file whose sha256 the approvals will bind")
@click.option("--runbook", "runbook_id", default=None, help="pre-approved runbook ID (standard changes)")
@click.option("--test-evidence", default=None)
@click.option("--security-review", default=None)
@click.option("--rollback-plan", default=None)
@click.option("--monitoring-plan", default=None)
@click.option("--expires", default="72h", show_default=True, help="lifetime, e.g. 24h, 3d")
@click.option("--force", is_flag=True, help="overwrite an existing file")
def new(out_path: str, ticket: str, change_class: str, summary: str, owner: str, author: str, stacks: tuple[str, ...],
        commit: str | None, plan_file: str | None, runbook_id: str | None, test_evidence: str | None,
        security_review: str | None, rollback_plan: str | None, monitoring_plan: str | None, expires: str,
        force: bool) -> None:
    """Write a change request template (fill in the TODOs, then `validate` and collect approvals)."""
    import hashlib

    from ps019.gate.settings import parse_duration

    from ps019.cli.outfile import prepare_output

    path = Path(out_path)
    if path.exists() and not force:
        raise InputError(f"{path} already exists (use --force to overwrite)")
    try:
        lifetime = parse_duration(expires)
    except ValueError as exc:
        raise InputError(f"--expires: {exc}") from None
    now = _now()
    artifact: dict[str, Any] = {"git_commit": commit or os.environ.get("PS019_GIT_COMMIT") or _git_head() or "TODO"}
    if plan_file:
        artifact["plan_digest"] = "sha256:" + hashlib.sha256(Path(plan_file).read_bytes()).hexdigest()
    document = {
        "version": 1, "ticket": ticket, "change_class": change_class, "summary": summary, "owner": owner,
        "author": author, "artifact": artifact, "stacks": list(stacks) or ["TODO-org/project/stack"],
        "runbook_id": runbook_id, "test_evidence": test_evidence, "security_review": security_review,
        "rollback_plan": rollback_plan, "monitoring_plan": monitoring_plan,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "expires_at": (now + lifetime).isoformat().replace("+00:00", "Z"), "approvals": [],
    }
    document = {k: v for k, v in document.items() if v is not None}
    prepare_output(path)
    _write_document(path, document, path.suffix.lower() in {".yaml", ".yml"})
    click.echo(f"wrote {path}; next: ps019 change-request validate {path}", err=True)


@change_request.command(name="validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--policy-pack-config", "config_path", default=None,
              help="pack config JSON (default $PS019_POLICY_PACK_CONFIG, else the built-in defaults): the gate's rules, "
                   "and approvals verified against gate.trustedKeys")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(file: str, config_path: str | None, fmt: str) -> None:
    """Check a change request as the gate will (its own rules, with the built-in defaults when no pack config is
    given), and its approvals' signatures against the pack config's trusted keys."""
    from ps019.gate import change_request as crm
    from ps019.gate.people import People
    from ps019.gate.signing import verify

    config_path = _config_path(config_path)
    settings, environments = _read_settings(config_path)
    path = Path(file)
    request, problems = _parse_request(path)
    approvals: list[dict[str, Any]] = []
    people = People.of(settings)
    if request is not None:
        problems += request_problems(request, settings, environments, _now())
        for index, approval in enumerate(request.approvals):
            row = {"index": index, "approver": approval.approver, "role": approval.role, "key_id": approval.key_id}
            if not config_path:
                row["status"] = "not verified (pass --policy-pack-config to verify against trusted keys)"
            else:
                result = verify(crm.payload_for(request, approval), approval.signature, approval.key_id,
                                settings.trusted_index(), purpose=crm.APPROVAL_PURPOSE)
                if result.ok and result.key and not people.same(result.key.identity, approval.approver):
                    row["status"] = f"key belongs to {result.key.identity}, not {approval.approver}"
                elif result.ok and result.key and approval.role == "author" and \
                        not people.same(result.key.identity, request.author):
                    row["status"] = f"signed as the author, but {result.key.identity} is not the author {request.author}"
                elif result.ok and result.key and approval.role not in result.key.roles and approval.role != "author":
                    row["status"] = f"key may not sign as {approval.role!r}"
                else:
                    row["status"] = "verified" if result.ok else result.problem
            approvals.append(row)
    rejected = [f"approvals[{r['index']}] ({r['approver']}): {r['status']}" for r in approvals
                if config_path and r["status"] != "verified"]
    if fmt == "json":
        click.echo(json.dumps({"file": str(path), "valid": not (problems or rejected),
                               "problems": problems + rejected, "approvals": approvals}, indent=2))
    else:
        if problems or rejected:
            click.echo(f"{path}: {len(problems) + len(rejected)} problem(s)")
            for problem in problems:
                click.echo(f"  {problem}")
        else:
            assert request is not None
            click.echo(f"{path}: valid ({request.change_class} change {request.ticket} for "
                       f"{', '.join(request.stacks)} at {request.artifact.git_commit[:12]}, "
                       f"{len(request.approvals)} approval(s))"
                       + ("" if config_path else "; checked with the gate's built-in defaults"))
        for row in approvals:
            click.echo(f"  approvals[{row['index']}] {row['approver']} as {row['role']} ({row['key_id']}): "
                       f"{row['status']}")
    if problems or rejected:
        raise SystemExit(1)


@change_request.command(name="schema")
def schema() -> None:
    """Print the change request JSON Schema (also published as docs/change-request.schema.json)."""
    from ps019.gate.change_request import json_schema_text

    click.echo(json_schema_text(), nl=False)


# --- approve --------------------------------------------------------------------------------------------------------


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="your private key (0600)")
@click.option("--identity", required=True, help="your identity (must match your trusted key entry)")
@click.option("--role", default="approver", show_default=True, help="role you approve as, e.g. approver, security")
@click.option("--expires", default=None, help="approval lifetime, e.g. 24h (default: until the request expires)")
@click.option("--policy-pack-config", "config_path", default=None,
              help="pack config JSON (default $PS019_POLICY_PACK_CONFIG): the gate's rules and its trusted keys")
@click.option("--allow-untrusted", is_flag=True,
              help="sign even when your key is not trusted by the config or the gate would refuse the request "
                   "(each problem is printed as a warning)")
def approve(file: str, key_path: str, identity: str, role: str, expires: str | None, config_path: str | None,
            allow_untrusted: bool) -> None:
    """Sign FILE as IDENTITY in ROLE and add the approval to it. Refuses a request the gate would refuse and a key the
    pack config does not trust for IDENTITY and ROLE (``--allow-untrusted`` turns both into warnings)."""
    from ps019.gate import change_request as crm
    from ps019.gate.people import People
    from ps019.gate.settings import parse_duration
    from ps019.gate.signing import key_id, load_private_key

    path = Path(file)
    data = _read_request_file(path)
    request, problems = _parse_request(path)
    if request is None:
        raise InputError(f"{path}: refusing to sign an invalid change request: " + "; ".join(problems))
    config_path = _config_path(config_path)
    settings, environments = _read_settings(config_path)
    now = _now()
    problems = request_problems(request, settings, environments, now)
    people = People.of(settings)
    if role != "author" and people.same(request.author, identity):
        problems.append(f"you ({identity}) are the author; an author's approval does not count (sign as the author "
                        "with --role author)")
    if role == "author" and not people.same(request.author, identity):
        problems.append(f"--role author: you ({identity}) are not the author {request.author} of this request; only "
                        "the author signs as the author")
    expires_at = None
    if expires:
        try:
            expires_at = now + parse_duration(expires)
        except ValueError as exc:
            raise InputError(f"--expires: {exc}") from None
    private_key = load_private_key(Path(key_path))
    my_key = key_id(private_key)
    trust: list[str] = []
    if not config_path:
        trust.append("no policy pack config (--policy-pack-config or $PS019_POLICY_PACK_CONFIG): cannot check that "
                     "your key is trusted")
    else:
        trusted = settings.trusted_index().get(my_key)
        if trusted is None:
            trust.append(f"key {my_key} is not in gate.trusted_keys of {config_path}; an approval signed with it "
                         "would not count")
        elif not people.same(trusted.identity, identity):
            trust.append(f"key {my_key} belongs to {trusted.identity}, not {identity}: sign with your own key")
        elif role not in trusted.roles and role != "author":
            trust.append(f"key {my_key} may not sign as {role!r} (its roles: {', '.join(trusted.roles)})")
    if problems or trust:
        if not allow_untrusted:
            raise InputError(f"{path}: refusing to sign: " + "; ".join(problems + trust))
        for warning in problems + trust:
            click.echo(f"warning: {warning}", err=True)
    approval = crm.sign_approval(request, private_key, approver=identity, role=role, signed_at=now,
                                 expires_at=expires_at)
    # A re-approval by the same person in the same role, with the same key, replaces their earlier one; an approval
    # made with another key is never silently replaced.
    clash = [a for a in request.approvals if a.approver.casefold() == identity.casefold() and a.role == role
             and a.key_id != my_key]
    if clash:
        raise InputError(f"{path} already holds an approval by {identity} as {role} signed with key "
                         f"{clash[0].key_id}; remove it first if you mean to replace it")
    kept = [a for a in request.approvals
            if not (a.approver.casefold() == identity.casefold() and a.role == role)]
    updated = request.model_copy(update={"approvals": [*kept, approval]})
    _write_document(path, updated.model_dump(mode="json", exclude_none=True), _is_yaml(path, data))
    click.echo(f"approved {request.change_class} change {request.ticket} as {identity} ({role}), key "
               f"{key_id(private_key)}", err=True)
    click.echo(f"  stacks: {', '.join(request.stacks)}", err=True)
    click.echo(f"  commit: {request.artifact.git_commit}"
               + (f"  plan: {request.artifact.plan_digest}" if request.artifact.plan_digest else ""), err=True)
    click.echo(f"  {len(updated.approvals)} approval(s) in {path}", err=True)
