"""``ps019 analyze`` and ``ps019 up``: run a policy pack over a stack export or a Pulumi program, offline.

Both go through the engine stand-in (``ps019.engine``): each pack runs in its own process over the real Analyzer
gRPC protocol, exactly as ``pulumi preview`` / ``pulumi up --policy-pack DIR`` would start it. Like the CLI, several
``--policy-pack`` flags run several packs in one pass (Python packs, and Node.js packs such as AWSGuard when ``node``
is installed); ``--policy-pack-config`` flags pair with them in order.

Exit status: 0 no mandatory violation, 1 a mandatory violation (or a failed pass), 2 unusable input.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click
import yaml

from ps019.errors import InputError

# Where the bundled ps019 pack lives: $PS019_POLICY_PACK, else policypacks/ps019 beside the source tree.
PACK_ENV_VAR = "PS019_POLICY_PACK"

# A ps019.engine.PackPool the commands reuse pack processes from (set by the demo and by tests; None = one process
# per pass, started and stopped like the Pulumi CLI does).
ENGINE_POOL = None


def bundled_pack_dir() -> Path:
    override = os.environ.get(PACK_ENV_VAR)
    if override:
        return Path(override)
    import ps019

    candidate = Path(ps019.__file__).resolve().parents[2] / "policypacks" / "ps019"
    if (candidate / "PulumiPolicy.yaml").is_file():
        return candidate
    raise InputError(f"the bundled ps019 policy pack was not found (looked in {candidate}); pass --policy-pack DIR "
                     f"or set {PACK_ENV_VAR}")


# ----------------------------------------------------------------------------------------------------------------
# Config: the engine hands the pack (and the program) a flat "namespace:key" -> string map, secrets decrypted.


@dataclass
class StackConfig:
    values: dict[str, Any] = field(default_factory=dict)  # "ns:key" -> str | structured value
    secret_keys: set[str] = field(default_factory=set)
    encrypted_keys: set[str] = field(default_factory=set)  # `secure:` in the config file, not supplied in clear

    def set(self, key: str, value: Any, *, secret: bool = False) -> None:
        self.values[key] = value
        self.encrypted_keys.discard(key)
        if secret:
            self.secret_keys.add(key)


def _full_key(key: str, project: str) -> str:
    key = key.strip()
    if not key or key.startswith(":") or key.endswith(":"):
        raise InputError(f"config key {key!r} is not of the form [NAMESPACE:]KEY")
    return key if ":" in key else f"{project}:{key}"


def _split_pair(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"{flag} {text.split('=')[0]!r}: expected KEY=VALUE")
    return key.strip(), value


def _contains_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False


def load_config_file(path: str, project: str, config: StackConfig) -> None:
    """A ``Pulumi.<stack>.yaml``: plaintext values are used as they are; ``secure:`` values (encrypted by the stack's
    secrets provider, which ps019 cannot decrypt offline) must be supplied with ``--secret-config``."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"config file {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise InputError(f"config file {path} must be a mapping with a 'config' mapping (a Pulumi.<stack>.yaml)")
    for key, value in (document.get("config") or {}).items():
        full = _full_key(str(key), project)
        if _contains_secure(value):
            config.encrypted_keys.add(full)
            config.secret_keys.add(full)
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif value is None:
            value = ""
        config.values[full] = value


def build_config(project: str, config_file: str | None, pairs: tuple[str, ...],
                 secret_pairs: tuple[str, ...]) -> StackConfig:
    config = StackConfig()
    if config_file:
        load_config_file(config_file, project, config)
    for pair in pairs:
        key, value = _split_pair(pair, "--config")
        config.set(_full_key(key, project), value)
    for pair in secret_pairs:
        key, value = _split_pair(pair, "--secret-config")
        config.set(_full_key(key, project), value, secret=True)
    if config.encrypted_keys:
        keys = ", ".join(sorted(config.encrypted_keys))
        raise InputError(f"config {keys} is encrypted in {config_file} and ps019 cannot decrypt Pulumi secrets "
                         f"offline; supply the value with --secret-config KEY=VALUE")
    return config


def parse_tags(pairs: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, value = _split_pair(pair, "--tag")
        tags[key] = value
    return tags


# ----------------------------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Inputs:
    """What the engine would register in each phase. A stack export is the same for both; a program is captured
    once per phase (in a preview, values that depend on other resources' outputs are unknown)."""

    kind: str  # "state" | "program"
    path: str
    stack: Any
    config: StackConfig
    warnings: list[str] = field(default_factory=list)
    _captured: dict[str, list] = field(default_factory=dict)
    program_options: dict[str, Any] = field(default_factory=dict)  # invoke_results, stack_references
    placeholders: dict[str, list[str]] = field(default_factory=dict)  # what a capture answered offline

    def resources(self, phase: str) -> list:
        if phase not in self._captured:
            captured = capture(self.path, self.stack, dry_run=(phase == "preview"), config=self.config,
                               **self.program_options)
            for warning in getattr(captured, "warnings", []):
                if warning not in self.warnings:
                    self.warnings.append(warning)
            for kind, items in (getattr(captured, "placeholders", None) or {}).items():
                merged = self.placeholders.setdefault(kind, [])
                merged.extend(i for i in items if i not in merged)
            self._captured[phase] = list(getattr(captured, "resources", captured))
        return self._captured[phase]


def load_inputs(*, state: str | None, program: str | None, stack: Any, config: StackConfig,
                first_phase: str, program_options: dict[str, Any] | None = None) -> Inputs:
    from ps019.engine import load_stack_export

    if state:
        export = load_stack_export(state, stack)
        resources = list(export.resources)
        if not resources:
            raise InputError(f"stack export {state} has no resources")
        return Inputs("state", state, stack, config, list(export.warnings),
                      {"preview": resources, "update": resources})
    assert program is not None
    inputs = Inputs("program", program, stack, config, program_options=dict(program_options or {}))
    inputs.resources(first_phase)  # a broken program is unusable input: fail before any pack starts
    return inputs


def capture(program: str, stack: Any, *, dry_run: bool, config: StackConfig, **options: Any) -> Any:
    from ps019.engine import Secret, capture_program

    directory = Path(program)
    if not directory.is_dir():
        raise InputError(f"program directory {program} does not exist")
    if not (directory / "Pulumi.yaml").is_file() and not (directory / "Pulumi.yml").is_file():
        raise InputError(f"{program} is not a Pulumi project: it has no Pulumi.yaml")
    values = {k: (Secret(v) if k in config.secret_keys else v) for k, v in config.values.items()}
    return capture_program(directory, stack=stack, dry_run=dry_run, config=values, **options)


# ----------------------------------------------------------------------------------------------------------------
# Output


def emit(report: dict, fmt: str, output: str | None) -> None:
    from ps019.cli.outfile import prepare_output
    from ps019.output import render_json, render_sarif, render_table

    if output:
        prepare_output(output, "--output")
    try:
        if fmt == "junit":
            from ps019.output import render_junit

            text = render_junit(report)
            if output:
                Path(output).write_text(text, encoding="utf-8")
            else:
                click.echo(text, nl=False)
            return
        if fmt == "table":
            from rich.console import Console

            if output:
                with open(output, "w", encoding="utf-8") as handle:
                    render_table(report, Console(file=handle, width=120, color_system=None, soft_wrap=False))
            else:
                render_table(report, _console())
            return
        text = render_json(report) if fmt == "json" else render_sarif(report)
        for warning in report.get("warnings", []):
            click.echo(f"ps019: warning: {warning}", err=True)
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None


def _console():
    from rich.console import Console

    stdout = sys.stdout
    is_terminal = hasattr(stdout, "isatty") and stdout.isatty()
    width = None if is_terminal else int(os.environ.get("COLUMNS") or 120)
    return Console(file=stdout, width=width, soft_wrap=False, highlight=False)


# ----------------------------------------------------------------------------------------------------------------
# Commands


def _common_options(command: Callable) -> Callable:
    options = [
        click.option("--state", "state", metavar="EXPORT.json", type=click.Path(dir_okay=False),
                     help="A `pulumi stack export` file (deployment v3/v4); `--show-secrets` exports let policies "
                          "see secret values."),
        click.option("--program", "program", metavar="DIR", type=click.Path(file_okay=False),
                     help="A Pulumi Python program directory (run under Pulumi's mocks in a child process; no cloud calls)."),
        click.option("--stack", "stack", metavar="ORG/PROJECT/STACK", required=True,
                     help="The stack the change is for (the pack sees it through pulumi.get_stack() etc.)."),
        click.option("--policy-pack", "policy_pack", metavar="DIR", type=click.Path(file_okay=False), multiple=True,
                     help="A policy pack directory (PulumiPolicy.yaml; runtime python or nodejs). Repeatable, as in "
                          "the Pulumi CLI. Default: the bundled ps019 pack."),
        click.option("--policy-pack-config", "policy_pack_config", metavar="FILE", type=click.Path(dir_okay=False),
                     multiple=True,
                     help="Pulumi's policy pack config JSON: {\"<policy>\": \"mandatory\" | {\"enforcementLevel\": "
                          "..., <properties>}, \"all\": ...}. Repeatable: the Nth applies to the Nth --policy-pack."),
        click.option("--config-file", "config_file", metavar="Pulumi.<stack>.yaml", type=click.Path(dir_okay=False),
                     help="Stack config file; plaintext values are used, `secure:` values need --secret-config. "
                          "Default with --program: DIR/Pulumi.<stack>.yaml when it exists."),
        click.option("--config", "config_pairs", metavar="[NS:]KEY=VALUE", multiple=True,
                     help="Stack config (repeatable; a bare KEY belongs to the project namespace)."),
        click.option("--secret-config", "secret_pairs", metavar="[NS:]KEY=VALUE", multiple=True,
                     help="Secret stack config (repeatable): delivered decrypted, as the engine does, and marked "
                          "secret so it is never printed."),
        click.option("--tag", "tag_pairs", metavar="KEY=VALUE", multiple=True, help="Stack tag (repeatable)."),
        click.option("--invoke-results", "invoke_results", metavar="FILE", type=click.Path(dir_okay=False),
                     help="With --program: real answers for provider functions, "
                          "{\"<token>\": [{\"args\": {...}, \"result\": {...}}]} (docs/analyze.md)."),
        click.option("--stack-reference", "stack_reference_pairs", metavar="NAME=OUTPUTS.json", multiple=True,
                     help="With --program: the outputs of a stack the program references (`pulumi stack output "
                          "--json --show-secrets` or a stack export); repeatable."),
        click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif", "junit"]), default="table",
                     show_default=True, help="Output format (json, sarif and junit are documented in "
                                             "docs/output-formats.md)."),
        click.option("--output", "-o", "output", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Write the output to FILE instead of stdout."),
        click.option("--timeout", "timeout", metavar="SECONDS", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
                     help="Seconds to wait for the pack to start and for each call it answers."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class _Request:
    stack: Any
    pack_dirs: list[Path]
    inputs: Inputs
    config: StackConfig
    tags: dict[str, str]
    policy_pack_configs: list[str]
    timeout: float
    bundled: bool = False

    @property
    def pack_dir(self) -> Path:
        return self.pack_dirs[0]

    def engine_kwargs(self) -> dict[str, Any]:
        return dict(stack=self.stack, config=dict(self.config.values),
                    secret_config_keys=sorted(self.config.secret_keys), tags=self.tags,
                    policy_pack_configs=list(self.policy_pack_configs), timeout=self.timeout, pool=ENGINE_POOL,
                    # The bundled pack runs with this interpreter (which has ps019) until `pulumi install` is run.
                    warn_fallback=not self.bundled)


def configure_cli_logging() -> None:
    """Logs go to stderr (stdout carries the table/JSON/SARIF). User-facing warnings are part of the report, so
    the log shows errors only unless PS019_LOG_LEVEL says otherwise."""
    from ps019.logging import configure_cli

    configure_cli("error")


def _prepare(state, program, stack, policy_pack, policy_pack_config, config_file, config_pairs, secret_pairs,
             tag_pairs, timeout, first_phase, invoke_results=None, stack_reference_pairs=()) -> _Request:
    from ps019.engine import StackRef

    configure_cli_logging()
    if bool(state) == bool(program):
        raise InputError("give exactly one of --state EXPORT.json or --program DIR")
    stack_ref = StackRef.parse(stack)
    packs = [policy_pack] if isinstance(policy_pack, (str, Path)) else list(policy_pack or ())
    configs = [policy_pack_config] if isinstance(policy_pack_config, (str, Path)) else list(policy_pack_config or ())
    pack_dirs = [Path(p) for p in packs] or [bundled_pack_dir()]
    if len(configs) > len(pack_dirs):
        raise InputError(f"{len(configs)} --policy-pack-config for {len(pack_dirs)} policy pack(s): each config "
                         "pairs with the --policy-pack in the same position")
    for config_path in configs:
        if not Path(config_path).is_file():
            raise InputError(f"policy pack config {config_path} does not exist")
    if config_file is None and program:
        # As the Pulumi CLI does: a program's stack config lives beside it in Pulumi.<stack>.yaml.
        beside = Path(program) / f"Pulumi.{stack_ref.stack}.yaml"
        config_file = str(beside) if beside.is_file() else None
    config = build_config(stack_ref.project, config_file, config_pairs, secret_pairs)
    tags = parse_tags(tag_pairs)
    program_options: dict[str, Any] = {}
    if (invoke_results or stack_reference_pairs) and not program:
        raise InputError("--invoke-results and --stack-reference apply to --program only")
    if invoke_results:
        from ps019.engine.invokes import load_invoke_results

        program_options["invoke_results"] = load_invoke_results(invoke_results)
    if stack_reference_pairs:
        from ps019.engine.stack_references import parse_stack_reference_pairs

        program_options["stack_references"] = parse_stack_reference_pairs(stack_reference_pairs)
    inputs = load_inputs(state=state, program=program, stack=stack_ref, config=config, first_phase=first_phase,
                         program_options=program_options)
    return _Request(stack_ref, pack_dirs, inputs, config, tags, [str(c) for c in configs], timeout,
                    bundled=not packs)


def _report(request: _Request, command: str, passes: list, skipped: list) -> dict:
    from ps019.output import build_report, control_catalogue

    names = {getattr(p, "name", "") for _, r in passes for p in (r.policies or ())}
    return build_report(passes, command=command, stack=str(request.stack), source_kind=request.inputs.kind,
                        source_path=request.inputs.path, warnings=request.inputs.warnings,
                        controls=control_catalogue(names), skipped=skipped)


def run_analysis(*, stack: str, state: str | None = None, program: str | None = None, mode: str = "preview",
                 policy_pack: Any = None, policy_pack_config: Any = None,
                 config_file: str | None = None, config_pairs: tuple[str, ...] = (),
                 secret_pairs: tuple[str, ...] = (), tag_pairs: tuple[str, ...] = (), timeout: float = 60.0,
                 invoke_results: str | None = None, stack_reference_pairs: tuple[str, ...] = ()) -> dict:
    """What ``ps019 analyze`` (mode ``preview``/``update``) and ``ps019 up`` (mode ``up`` or ``up-skip-preview``) do,
    as a function: returns the report (see docs/output-formats.md). Raises ``Ps019Error`` for unusable input.
    ``policy_pack``/``policy_pack_config``: a path or a list of them (several packs in one pass)."""
    if mode not in ("preview", "update", "up", "up-skip-preview"):
        raise ValueError(f"unknown mode {mode!r}")
    phases = {"preview": ["preview"], "update": ["update"], "up": ["preview", "update"],
              "up-skip-preview": ["update"]}[mode]
    request = _prepare(state, program, stack, policy_pack, policy_pack_config, config_file, config_pairs,
                       secret_pairs, tag_pairs, timeout, phases[0], invoke_results, stack_reference_pairs)
    # The pack digests the program's source tree into the record, as it does under `pulumi up` run from the program.
    saved_program_dir = os.environ.get("PS019_PROGRAM_DIR")
    if program:
        os.environ["PS019_PROGRAM_DIR"] = str(Path(program).resolve())
    try:
        return _run_phases(request, phases, mode)
    finally:
        if program:
            if saved_program_dir is None:
                os.environ.pop("PS019_PROGRAM_DIR", None)
            else:
                os.environ["PS019_PROGRAM_DIR"] = saved_program_dir


def _run_phases(request: Any, phases: list[str], mode: str) -> Any:
    from ps019.engine.runner import run_passes

    passes: list = []
    skipped: list = []
    for phase in phases:
        resources = request.inputs.resources(phase)
        command = {"preview": "ps019 analyze", "update": "ps019 analyze --update", "up": "ps019 up",
                   "up-skip-preview": "ps019 up --skip-preview"}[mode]
        results = run_passes(request.pack_dirs, resources, dry_run=(phase == "preview"),
                             environ=offline_environ(request.inputs, command), **request.engine_kwargs())
        passes.extend((phase, result) for result in results)
        if mode == "up" and phase == "preview" and any(result.failed for result in results):
            skipped.append({"phase": "update", "reason": "the preview failed (mandatory violations), so "
                                                         "`pulumi up` would not start the update"})
            break
    report = _report(request, "analyze" if mode in ("preview", "update") else "up", passes, skipped)
    report["source"]["offline"] = True  # the ps019 pack recorded these passes as offline_* (never deployments)
    if request.inputs.kind == "program":
        report["source"]["offline_placeholders"] = {k: list(v) for k, v in request.inputs.placeholders.items() if v}
    return report


def offline_environ(inputs: Inputs, command: str) -> dict[str, str]:
    """The CLI's environment for the packs, plus ``PS019_OFFLINE_RUN``: every pass ``ps019 analyze``/``up`` drives is
    offline (nothing is deployed), and the ps019 pack records it as such (kinds ``offline_*`` and the record's
    ``offline`` field: the command, the input and what was answered with placeholders), so that no offline record is
    ever counted as a deployment. Other packs ignore the variable."""
    import json

    import ps019
    from ps019.pack.stack import OFFLINE_ENV_VAR

    marker = {"engine": f"ps019 {getattr(ps019, '__version__', '')} engine stand-in ({command})".replace("  ", " "),
              "source": inputs.kind,
              "placeholders": {k: list(v) for k, v in sorted(inputs.placeholders.items()) if v}}
    return {**os.environ, OFFLINE_ENV_VAR: json.dumps(marker, sort_keys=True)}


@click.command("analyze")
@_common_options
@click.option("--preview/--update", "preview", default=True, show_default=True,
              help="Engine mode: a preview reports every violation; an update stops at the first mandatory "
                   "Analyze violation (later resources are not analyzed, stack policies do not run).")
def analyze(state, program, stack, policy_pack, policy_pack_config, config_file, config_pairs, secret_pairs,
            tag_pairs, invoke_results, stack_reference_pairs, fmt, output, timeout, preview) -> None:
    """Run a policy pack over a stack export or a Pulumi program, as `pulumi preview` (default) or the update
    pass of `pulumi up` would, with no Pulumi CLI, cloud account or backend.

    \b
    ps019 analyze --state stack-export.json --stack acme/web-service/prod
    ps019 analyze --program examples/deploy-role --stack acme/deploy-role/dev --format sarif -o ps019.sarif \
        --secret-config deploySecretAccessKey=...

    Exit status: 0 nothing mandatory, 1 a mandatory violation, 2 unusable input.
    """
    report = run_analysis(stack=stack, state=state, program=program, mode="preview" if preview else "update",
                          policy_pack=policy_pack, policy_pack_config=policy_pack_config, config_file=config_file,
                          config_pairs=config_pairs, secret_pairs=secret_pairs, tag_pairs=tag_pairs,
                          timeout=timeout, invoke_results=invoke_results, stack_reference_pairs=stack_reference_pairs)
    emit(report, fmt, output)
    raise SystemExit(report["exit_code"])


@click.command("up")
@_common_options
@click.option("--skip-preview", is_flag=True,
              help="Run only the update pass (what the Automation API's stack.up() does).")
def up(state, program, stack, policy_pack, policy_pack_config, config_file, config_pairs, secret_pairs,
       tag_pairs, invoke_results, stack_reference_pairs, fmt, output, timeout, skip_preview) -> None:
    """`pulumi up` through the policy pack: a preview pass, then an update pass in a new pack process, as the
    Pulumi CLI does. The update does not start when the preview failed.

    Exit status: 0 nothing mandatory, 1 a mandatory violation (or the update did not run), 2 unusable input.
    """
    report = run_analysis(stack=stack, state=state, program=program,
                          mode="up-skip-preview" if skip_preview else "up", policy_pack=policy_pack,
                          policy_pack_config=policy_pack_config, config_file=config_file, config_pairs=config_pairs,
                          secret_pairs=secret_pairs, tag_pairs=tag_pairs, timeout=timeout,
                          invoke_results=invoke_results, stack_reference_pairs=stack_reference_pairs)
    emit(report, fmt, output)
    raise SystemExit(report["exit_code"])
