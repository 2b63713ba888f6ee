"""``ps019 report``: programme metrics over the evidence store (definitions in ps019.evidence.report)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import click

from ps019.cli.evidence import (_console, _time, configure_logging, key_option, opened_store, safe_url, store_option,
                               trusted_keys)
from ps019.errors import InputError

DEFAULT_PERIOD = timedelta(days=90)  # without --since: the quarter before --until (docs/auditor-guide.md)


@click.command("report")
@click.option("--since", help="Start of the period (inclusive): YYYY-MM-DD, ISO 8601, or e.g. 30d. Default: "
                                "90 days before --until (a quarter, the usual audit sampling period).")
@click.option("--until", help="End of the period (exclusive); default now.")
@click.option("--stack", help="Only this stack's records (governance records are always included).")
@store_option
@click.option("--review-sla", type=float, default=120.0, show_default=True,
              help="Hours allowed from a break-glass close to its review before it counts as overdue.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--include-offline", is_flag=True,
              help="Count offline runs (`ps019 analyze`/`up`, kinds offline_*) as the passes they rehearse. For "
                   "rehearsals only: the report then says on every rendering that it includes them. Without it they "
                   "are never counted, only listed as offline runs.")
@key_option
def report(since, until, stack, store_url, review_sla, fmt, out_file, include_offline, public_keys) -> None:
    """Gate bypasses, emergency ratio, evidence completeness, review latency, overdue reviews, exceptions in force
    and post-release defects for a period. `--format html` writes one static file with inline SVG charts."""
    from ps019.evidence.report import compute_metrics, load_documents, render_html, render_json, render_table
    from ps019.evidence.settings import resolve_store_url

    configure_logging()
    t0, t1 = _time(since, "--since"), _time(until, "--until")
    if t0 is None:
        t0 = (t1 or datetime.now(timezone.utc)) - DEFAULT_PERIOD
    if t0 and t1 and t1 <= t0:
        raise InputError("--until must be after --since")
    if review_sla <= 0:
        raise InputError("--review-sla must be positive")
    with opened_store(store_url, keys=trusted_keys(public_keys)) as store:
        docs = load_documents(store, t0, t1, stack)
    metrics = compute_metrics(docs, since=t0, until=t1, review_sla=timedelta(hours=review_sla),
                              include_offline=include_offline)
    if out_file:
        from ps019.cli.outfile import prepare_output

        prepare_output(out_file)
    if fmt == "table":
        if out_file:
            from rich.console import Console

            with open(out_file, "w", encoding="utf-8") as fh:
                render_table(metrics, Console(file=fh, width=140, color_system=None))
        else:
            render_table(metrics, _console())
        return
    text = render_json(metrics) if fmt == "json" else render_html(
        metrics, store=safe_url(resolve_store_url(store_url)))
    if out_file:
        try:
            with open(out_file, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise InputError(f"cannot write {out_file}: {exc.strerror}") from None
        click.echo(f"report written to {out_file}", err=True)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
