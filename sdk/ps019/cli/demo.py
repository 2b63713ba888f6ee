"""``ps019 demo``: the whole product in one command, offline.

It runs the example stacks (examples/) through the bundled ps019 policy pack exactly as ``pulumi up --policy-pack``
would (the engine stand-in starts the real pack process and talks the Analyzer gRPC protocol to it), tells what was
blocked and why, with control IDs and PS-019 clauses, and then shows the signed, hash-chained evidence records the
pack itself wrote, and verifies them. No cloud account, no Pulumi CLI, no backend: AWS is switched off for the
pack processes (no endpoint, no credentials, no instance metadata).
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import click

from ps019.errors import InputError

# Values for the examples' secret config (`secure:` in their Pulumi.<stack>.yaml), used by the demo, the committed
# exports and the tests. They are fake, and the tests prove none of them is ever printed.
DEMO_SECRET_CONFIG = {
    "web-service": {"web-service:dbPassword": "demo-only-Pg-7f3a9c2e51"},
    "deploy-role": {"deploy-role:deploySecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYdemoONLY01"},
}

# Each story: (title, what it shows, run_analysis arguments relative to examples/).
STORIES = [
    (
        "An over-privileged deploy role, deployed the way `pulumi up` does it",
        "The deploy-role program trusts every AWS principal, attaches AdministratorAccess, allows \"Action\": \"*\" "
        "and creates a long-lived access key. `pulumi up` runs a preview first; the preview fails, so the update "
        "never starts and nothing is created.",
        dict(program="deploy-role", stack="acme/deploy-role/dev", mode="up", config_file="Pulumi.dev.yaml"),
    ),
    (
        "A production change with no approval",
        "The web service itself is clean, but this is production and nobody approved the change. The gate decides "
        "on pulumi:pulumi:Stack, the first resource the engine analyzes, so the update stops before any provider "
        "is asked to change anything.",
        dict(state="web-service/stack-export.prod.json", stack="acme/web-service/prod", mode="update"),
    ),
    (
        "The same service on its development stack",
        "Least-privilege IAM, encrypted private storage, a database password from secret config: the preview and "
        "the update both pass, and each leaves an evidence record.",
        dict(state="web-service/stack-export.dev.json", stack="acme/web-service/dev", mode="up"),
    ),
]

_AWS_OFF = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull}
_AWS_DROP = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
# What a deployer presents to the pack; the demo's stories run without any (that is their point).
_PS019_DROP = ("PS019_CHANGE_REQUEST", "PS019_BREAK_GLASS_GRANT")


def examples_dir() -> Path:
    override = os.environ.get("PS019_EXAMPLES")
    if override:
        return Path(override)
    import ps019

    candidate = Path(ps019.__file__).resolve().parents[2] / "examples"
    if not (candidate / "web-service" / "Pulumi.yaml").is_file():
        raise InputError(f"the example stacks were not found (looked in {candidate}); run the demo from a checkout "
                         "of the ps019 repository or set PS019_EXAMPLES")
    return candidate


@contextlib.contextmanager
def _demo_environment(store_url: str) -> Iterator[None]:
    """The environment the pack processes inherit: AWS unreachable by construction, evidence to ``store_url``."""
    saved = dict(os.environ)
    try:
        for name in [*_AWS_DROP, *_PS019_DROP]:
            os.environ.pop(name, None)
        for name in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_")]:
            os.environ.pop(name)
        os.environ.update(_AWS_OFF)
        os.environ["PS019_EVIDENCE_STORE"] = store_url
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _resolve_store_url(store: str | None) -> str:
    try:
        from ps019.evidence.settings import resolve_store_url
    except ImportError:  # the evidence package is optional for the analysis part of the demo
        return store or os.environ.get("PS019_EVIDENCE_STORE") or ""
    return resolve_store_url(store)


@click.command("demo")
@click.option("--store", metavar="URL",
              help="Evidence store for the demo's records (default: $PS019_EVIDENCE_STORE, else the per-user sqlite "
                   "store, see docs/evidence.md).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to wait for a pack to start or answer.")
def demo(store: str | None, timeout: float) -> None:
    """Analyze the example stacks with the bundled ps019 pack, offline, and show what was blocked, why, and the
    signed evidence records the runs left."""
    import ps019.cli.analyze as analyze_module
    from ps019.engine import PackPool

    analyze_module.configure_cli_logging()
    console = analyze_module._console()
    started = time.monotonic()
    since = datetime.now(timezone.utc)
    examples = examples_dir()
    store_url = _resolve_store_url(store)
    console.print("[bold]ps019 demo[/bold]: the example stacks through the bundled ps019 policy pack, as "
                  "`pulumi up --policy-pack policypacks/ps019` runs it (no cloud account, no Pulumi CLI).")
    console.print(f"evidence store: {_safe_url(store_url) or 'not configured'}\n")

    reports = []
    with _demo_environment(store_url), PackPool() as pool:
        previous_pool = analyze_module.ENGINE_POOL
        analyze_module.ENGINE_POOL = pool
        try:
            for number, (title, story, spec) in enumerate(STORIES, start=1):
                report = _run_story(examples, spec, timeout)
                reports.append(report)
                _print_story(console, number, title, story, spec, report)
        finally:
            analyze_module.ENGINE_POOL = previous_pool
    _print_evidence(console, store_url, since, [r["stack"] for r in reports])
    console.print(f"\ndemo finished in {time.monotonic() - started:.1f}s. Next: `ps019 analyze --help`, "
                  "`ps019 controls`, `ps019 evidence list`.")


def _run_story(examples: Path, spec: dict, timeout: float) -> dict:
    from ps019.cli.analyze import run_analysis

    kwargs: dict[str, Any] = {"stack": spec["stack"], "mode": spec["mode"], "timeout": timeout}
    project = spec["stack"].split("/")[1]
    if "program" in spec:
        kwargs["program"] = str(examples / spec["program"])
        kwargs["config_file"] = str(examples / spec["program"] / spec["config_file"])
        kwargs["secret_pairs"] = tuple(f"{k}={v}" for k, v in DEMO_SECRET_CONFIG.get(project, {}).items())
    else:
        kwargs["state"] = str(examples / spec["state"])
    return run_analysis(**kwargs)


def _print_story(console: Any, number: int, title: str, story: str, spec: dict, report: dict) -> None:
    from rich.markup import escape

    source = spec.get("program") or spec.get("state")
    kind = "program" if "program" in spec else "stack export"
    console.rule(f"[bold]{number}. {escape(title)}[/bold]", align="left")
    console.print(f"[dim]{kind} examples/{escape(source)} → stack {escape(report['stack'])}[/dim]")
    console.print(escape(story))
    controls = report.get("controls") or {}
    for pass_ in report["passes"]:
        counts = pass_["counts"]
        if pass_["blocked_at"]:
            verdict = (f"[bold red]BLOCKED[/bold red] at {escape(_name(pass_['blocked_at']))}: "
                       f"{pass_['resources_analyzed']} resource(s) analyzed, nothing after it")
        elif pass_["failed"] or counts["mandatory"]:
            verdict = f"[bold red]FAILED[/bold red]: {counts['mandatory']} mandatory violation(s)"
        else:
            verdict = f"[bold green]PASSED[/bold green]: {pass_['resources_analyzed']} resources analyzed"
        console.print(f"  [bold]{pass_['phase']}[/bold]{' (dry run)' if pass_['dry_run'] else ''}: {verdict}"
                      + (f", {counts['advisory']} advisory" if counts["advisory"] else ""))
        for d in pass_["diagnostics"]:
            if d["level"] not in ("mandatory", "remediate"):
                continue
            console.print(f"    [red]✗[/red] [bold]{escape(d['policy'])}[/bold] on {escape(_name(d['urn']))} "
                          f"[dim]({escape(d['resource_type'])})[/dim]")
            console.print(f"      {escape(_specific(d['message']))}")
            clause = (controls.get(d["policy"]) or {}).get("clause")
            if clause:
                console.print(f"      [dim]{escape(clause)}[/dim]")
    for skipped in report.get("skipped_passes", []):
        console.print(f"  [bold]{skipped['phase']}[/bold]: [yellow]not started[/yellow] ({escape(skipped['reason'])})")
    console.print()


def _print_evidence(console: Any, store_url: str, since: datetime, stacks: list[str]) -> None:
    from rich.markup import escape

    console.rule("[bold]Evidence the runs left[/bold]", align="left")
    try:
        from ps019.evidence import open_store, verify_store
        from ps019.evidence.settings import EvidenceSettings
    except ImportError as exc:
        console.print(f"evidence: the evidence package is not available ({exc}); nothing to show")
        return
    records = []
    try:
        with open_store(store_url) as opened:
            for stack in dict.fromkeys(stacks):
                records.extend(r for r in opened.query(stack=stack, since=since))
            records.sort(key=lambda r: (r.chain_key, r.sequence))
            verifications = {stack: verify_store(opened, EvidenceSettings(store_url=store_url).public_keys(),
                                                 stack=stack)
                             for stack in dict.fromkeys(r.chain_key for r in records)}
    except Exception as exc:  # noqa: BLE001 - the analysis above stands on its own; say why this part is missing
        console.print(f"evidence: could not read {escape(_safe_url(store_url))}: {escape(str(exc).splitlines()[0])}")
        return
    if not records:
        console.print("evidence: the pack wrote no records for these runs (see docs/evidence.md for the pack's "
                      "evidence settings)")
        return
    width = max(len(r.chain_key) for r in records)
    for stored in records:
        record = stored.record
        links = ", ".join(f"{k.removesuffix('_record_id')} {v[:8]}" for k, v in record.links.items())
        console.print(f"  {escape(stored.chain_key):<{width}}  #{stored.sequence:<3} {_value(record.kind):<8} "
                      f"{record.outcome or '':<10} {record.environment:<12} "
                      f"{len(record.policy_results):>2} policy result(s)  record {stored.record_id[:8]}  "
                      f"hash {stored.hash[:10]}" + (f"  [dim](links {escape(links)})[/dim]" if links else ""))
    for stack, verification in verifications.items():
        mark = "[green]✓[/green]" if verification.ok else "[red]✗[/red]"
        console.print(f"{mark} chain {escape(stack)}: {escape(verification.summary())}")
    console.print(f"[dim]records are in {escape(_safe_url(store_url))}; `ps019 evidence show ID` prints one, "
                  "`ps019 evidence verify` checks every signature and the whole chain[/dim]")


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _specific(message: str) -> str:
    """pulumi_policy sends ``description\\nmessage``; the second part is what this resource did wrong."""
    text = message.split("\n", 1)[1] if "\n" in message else message
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."


def _value(value: Any) -> str:
    return str(getattr(value, "value", value))


def _safe_url(url: str) -> str:
    """A store URL without credentials (postgresql://user:password@host/db)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
