"""The ``ps019`` command. Subcommands live one area per module and are imported only when used, so that
``ps019 iam check`` does not pay for importing pulumi or boto3."""

from __future__ import annotations

import importlib
import sys

import click

from ps019.errors import Ps019Error, printable

# name -> "module:attribute"; each module owns its commands.
_COMMANDS = {
    "analyze": "ps019.cli.analyze:analyze",
    "up": "ps019.cli.analyze:up",
    "demo": "ps019.cli.demo:demo",
    "controls": "ps019.cli.controls:controls",
    "iam": "ps019.cli.iam:iam",
    "keygen": "ps019.cli.gate:keygen",
    "change-request": "ps019.cli.gate:change_request",
    "approve": "ps019.cli.gate:approve",
    "oidc": "ps019.cli.oidc:oidc",
    "break-glass": "ps019.cli.breakglass:break_glass",
    "exception": "ps019.cli.breakglass:exception",
    "evidence": "ps019.cli.evidence:evidence",
    "verify": "ps019.cli.evidence:verify_deployment",
    "report": "ps019.cli.report:report",
    "pack": "ps019.cli.pack:pack",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # not built yet
            raise
        return getattr(module, attr, None)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="ps019")
def cli() -> None:
    """PS-019 secure change management for Pulumi: run the policy pack offline, manage approvals and
    break-glass grants, and query the signed evidence record."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="ps019", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(2)
    except Ps019Error as exc:
        click.echo(f"ps019: error: {printable(exc)}", err=True)  # messages quote record text: never raw
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:  # a file the command reads or writes: one line naming it, never a traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(f"ps019: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    sys.exit(0)
