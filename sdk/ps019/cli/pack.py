"""``ps019 pack``: build the publishable policy pack, and check a policy pack config the way the engine will.

    ps019 pack build --out ~/ps019-pack               # wheel + PulumiPolicy.yaml + __main__.py + requirements.txt
    ps019 pack validate-config policy.json            # the engine's schema validation, then ps019's own checks
    ps019 pack schema                                 # every policy's config JSON Schema (what the engine validates)
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ps019.errors import InputError


@click.group("pack")
def pack() -> None:
    """Build the ps019 policy pack for `pulumi policy publish`, and validate policy pack configs."""


@pack.command("build")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write the pack into (created; must be empty unless --force).")
@click.option("--force", is_flag=True, help="Replace the pack files of a non-empty directory.")
@click.option("--wheel", "wheel", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Vendor this ps019 wheel instead of building one with `python -m build`.")
def build(out_dir: str, force: bool, wheel: str | None) -> None:
    """Build the ps019 wheel and write a self-contained pack directory (ready for `pulumi policy publish`): the
    requirements install the vendored wheel by a path relative to the pack, as the Pulumi CLI installs packs."""
    from ps019.cli.outfile import prepare_directory
    from ps019.pack.build import build_pack, publish_exclusions

    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--out {out_dir}: is a file, not a directory")
    prepare_directory(directory.parent if str(directory.parent) not in ("", ".") else Path("."))
    built = build_pack(directory, wheel=Path(wheel) if wheel else None, force=force)
    click.echo(f"built {built.directory} (ps019 {built.version}, wheel {built.wheel.name})", err=True)
    click.echo(f"pack digest: sha256:{built.digest}  (also in {built.directory / 'BUILD-INFO.json'})", err=True)
    excluded = publish_exclusions(built.directory)
    for ignore, pattern in excluded:
        click.echo(f"warning: {ignore} ignores {built.directory} ({pattern!r}): `pulumi policy publish` skips every "
                   "file a .gitignore above the pack ignores, so it would publish none of this pack's files", err=True)
    if excluded:
        click.echo("next: to publish, build the pack outside ignored directories (e.g. --out ~/ps019-pack); this "
                   f"copy runs locally: pulumi preview --policy-pack {built.directory}", err=True)
    else:
        click.echo(f"next: cd {built.directory} && pulumi install && pulumi policy publish", err=True)
    click.echo(f"sha256:{built.digest}")


@pack.command("validate-config")
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate_config(config_file: str, fmt: str) -> None:
    """Validate a policy pack config file as the engine does before it configures the pack (each policy's JSON
    Schema; `pulumi policy validate-config` uses the same schemas), then ps019's own checks: each control's parameters
    against its config model, and ps019-settings (what PS019-PACK-001 would report at run time). Exit status: 0
    valid, 1 problems found, 2 unusable file."""
    from ps019.controls.registry import all_controls
    from ps019.engine.policy_config import load_policy_pack_config, merge_config, validation_errors
    from ps019.pack import analyzer_info
    from ps019.pack.schema import control_config_problems, control_config_schema
    from ps019.pack.settings import SETTINGS_POLICY, Settings

    user = load_policy_pack_config(config_file)
    info = analyzer_info()
    config = merge_config(info, user)
    known = {p.name for p in info.policies} | {"all"}
    unknown = sorted(set(user) - known)
    engine_problems = validation_errors(info, config)
    ps019_problems: list[str] = []
    unknown_keys: list[str] = []
    for control in all_controls():
        if control.id not in config:
            continue
        properties = config[control.id].properties
        ps019_problems += control_config_problems(control, properties)
        declared, _ = control_config_schema(control)
        unknown_keys += [f"{control.id}.{key}" for key in sorted(set(user.get(control.id).properties
                                                                     if control.id in user else ()) - set(declared))]
    if not any(p.startswith(f"{SETTINGS_POLICY}:") for p in engine_problems):
        settings = Settings(raw=config[SETTINGS_POLICY].properties if SETTINGS_POLICY in config else {})
        ps019_problems += [message for message in settings.validate_all().values()]
    result = {"file": config_file, "valid": not engine_problems and not ps019_problems,
              "engine": engine_problems, "ps019": ps019_problems,
              "unknown_policies": unknown, "unknown_keys": unknown_keys}
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        for problem in engine_problems:
            click.echo(f"engine: {problem}")
        for problem in ps019_problems:
            click.echo(f"ps019: {problem}")
        for name in unknown:
            click.echo(f"note: {name!r} is not a policy of the ps019 pack (the engine ignores it)")
        for key in unknown_keys:
            click.echo(f"note: {key} is not a parameter of that policy (the engine and the pack ignore it)")
        click.echo(f"{config_file}: " + ("valid" if result["valid"] else
                                         f"{len(engine_problems) + len(ps019_problems)} problem(s)"))
    raise SystemExit(0 if result["valid"] else 1)


@pack.command("schema")
@click.option("--policy", "policy", default=None, help="Only this policy (e.g. ps019-settings, PS019-IAM-003).")
def schema(policy: str | None) -> None:
    """Print each policy's config JSON Schema, exactly as the pack sends it to the engine (GetAnalyzerInfo)."""
    from google.protobuf import json_format

    from ps019.pack import analyzer_info

    info = analyzer_info()
    out = {}
    for p in info.policies:
        if policy and p.name != policy:
            continue
        document = {"type": "object", **json_format.MessageToDict(p.configSchema)} if p.HasField("configSchema") \
            else {"type": "object"}
        out[p.name] = document
    if policy and not out:
        raise InputError(f"no policy {policy!r} in the ps019 pack (see `ps019 controls`)")
    click.echo(json.dumps(out, indent=2, sort_keys=True))
