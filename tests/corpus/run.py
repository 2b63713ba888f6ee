"""Runs every program of the corpus (tests/corpus/programs/*/CORPUS.json) through ``ps019 analyze`` offline.

    .venv/bin/python -m tests.corpus.run [--mode preview|update|both] [--only SUBSTRING] [--json FILE]

Prints one line per program and mode: the exit status ``ps019 analyze`` would return (0 nothing mandatory,
1 a mandatory violation, 2 unusable input) and, for 2, the error. A program whose CORPUS.json says
``"expect": "analyses"`` must exit 0 or 1; one that says ``"expect": "broken"`` must exit 2 with its own error
and file:line. The exit status of this command is 1 when any program missed its expectation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent
PROGRAMS = CORPUS / "programs"


@dataclass
class Outcome:
    slug: str
    mode: str
    exit_code: int
    seconds: float
    error: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    expect: str = "analyses"

    @property
    def as_expected(self) -> bool:
        return self.exit_code in (0, 1) if self.expect == "analyses" else self.exit_code == 2


def programs(only: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for meta in sorted(PROGRAMS.glob("*/CORPUS.json")):
        slug = meta.parent.name
        if only and only not in slug:
            continue
        found.append((slug, json.loads(meta.read_text())))
    return found


def analyse(slug: str, meta: dict[str, Any], mode: str, *, pool: Any = None) -> Outcome:
    """What ``ps019 analyze --program <dir> --<mode>`` returns for one corpus program."""
    from ps019.cli import analyze as cli_analyze
    from ps019.errors import Ps019Error

    directory = PROGRAMS / slug
    config = tuple(f"{k}={v}" for k, v in meta.get("config", {}).items())
    secrets = tuple(f"{k}={v}" for k, v in meta.get("secret_config", {}).items())
    references = tuple(f"{name}={CORPUS / path}" for name, path in meta.get("stack_references", {}).items())
    saved_pool = cli_analyze.ENGINE_POOL
    cli_analyze.ENGINE_POOL = pool
    started = time.monotonic()
    try:
        report = cli_analyze.run_analysis(stack=meta["stack"], program=str(directory), mode=mode,
                                          config_pairs=config, secret_pairs=secrets,
                                          **_reference_kwargs(cli_analyze, references))
        return Outcome(slug, mode, int(report["exit_code"]), time.monotonic() - started, report=report,
                       expect=meta.get("expect", "analyses"))
    except Ps019Error as exc:
        return Outcome(slug, mode, 2, time.monotonic() - started, error=str(exc),
                       expect=meta.get("expect", "analyses"))
    finally:
        cli_analyze.ENGINE_POOL = saved_pool


def _reference_kwargs(cli_analyze: Any, references: tuple[str, ...]) -> dict[str, Any]:
    # --stack-reference arrived with the offline program mode; older run_analysis has no such parameter.
    import inspect

    if "stack_reference_pairs" in inspect.signature(cli_analyze.run_analysis).parameters:
        return {"stack_reference_pairs": references}
    return {}


def _run_chunk(slugs: list[str], modes: list[str]) -> list[Outcome]:
    from ps019.engine import PackPool

    metas = dict(programs())
    outcomes = []
    with PackPool() as pool:
        for slug in slugs:
            for mode in modes:
                outcome = analyse(slug, metas[slug], mode, pool=pool)
                outcome.report = {"warnings": outcome.report.get("warnings", []),
                                  "source": outcome.report.get("source", {})}
                outcomes.append(outcome)
    return outcomes


def run_all(modes: list[str], only: str | None = None, jobs: int = 1) -> list[Outcome]:
    """Every program in every mode; ``jobs`` > 1 splits the programs over that many processes (each with its own
    pack pool: the CLI's environment handling is per process)."""
    slugs = [slug for slug, _ in programs(only)]
    if jobs <= 1 or len(slugs) < 2:
        return _run_chunk(slugs, modes)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [slugs[i::jobs] for i in range(jobs)]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as executor:
        results = list(executor.map(_run_chunk, chunks, [modes] * jobs))
    order = {slug: i for i, slug in enumerate(slugs)}
    return sorted((o for chunk in results for o in chunk), key=lambda o: (order[o.slug], modes.index(o.mode)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["preview", "update", "both"], default="both")
    parser.add_argument("--only", help="run only programs whose directory name contains this")
    parser.add_argument("--jobs", type=int, default=1, help="processes to spread the programs over")
    parser.add_argument("--json", help="write the outcomes to this file")
    args = parser.parse_args(argv)

    modes = ["preview", "update"] if args.mode == "both" else [args.mode]
    started = time.monotonic()
    outcomes = run_all(modes, args.only, args.jobs)
    for outcome in outcomes:
        mark = "ok " if outcome.as_expected else "BAD"
        detail = f"  {outcome.error[:220]}" if outcome.error else ""
        print(f"{mark} {outcome.exit_code} {outcome.mode:7} {outcome.seconds:5.1f}s {outcome.slug}{detail}")
    for mode in modes:
        mine = [o for o in outcomes if o.mode == mode]
        valid = [o for o in mine if o.expect == "analyses"]
        print(f"{mode}: {sum(o.exit_code in (0, 1) for o in valid)}/{len(valid)} valid programs analysed; "
              f"{sum(o.exit_code == 2 for o in mine if o.expect == 'broken')}/"
              f"{sum(o.expect == 'broken' for o in mine)} broken programs refused")
    print(f"total {time.monotonic() - started:.1f}s")
    if args.json:
        Path(args.json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=2, default=str))
    return 0 if all(o.as_expected for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
