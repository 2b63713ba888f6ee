"""Pack cost, side by side in one run: the empty-pack floor vs the ps019 pack, through the engine stand-in.

    .venv/bin/python bench/pack_bench.py --resources 1000 10000 --repeat 3
    .venv/bin/python bench/pack_bench.py --cold-starts 21


For each size it builds one synthetic stack export (bench/synthetic.py), then alternates the two packs over the same
export in preview mode and reports the median per-resource Analyze cost, the AnalyzeStack call (which, for ps019,
includes building, signing and storing the evidence record), the ratio to the floor, and each pack's cold start
(spawn until the port is printed). ``--cold-starts N`` measures only the cold start: N spawns of each pack, alternating,
median and quartiles. Before measuring, both packs' sources are compiled to bytecode (``compileall``), as ``pip
install`` does for an installed ps019; without it, an environment with ``PYTHONDONTWRITEBYTECODE`` set compiles ps019's
modules on every spawn (about 20 ms more), while the empty pack's dependencies are already compiled. The ps019 pack runs with every control enabled and the embedded evidence store in a
temporary directory. For ps019 it also reports the evidence record's cost as measured inside the pack process (the
``seconds`` of its decision log's ``evidence_written`` event: building, redacting, canonicalising, signing and
storing the record) against the same pass's analysis (every Analyze call). Not a test: numbers go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import make_export  # noqa: E402

from ps019.engine import load_stack_export, run_pass  # noqa: E402

PACKS = {"empty (floor)": ROOT / "bench" / "packs" / "empty", "ps019": ROOT / "policypacks" / "ps019"}


def compile_sources() -> None:
    """Bytecode for ps019 and the two packs, as an installed ps019 has (pip compiles wheels at install time)."""
    import compileall

    for directory in (ROOT / "sdk" / "ps019", *PACKS.values()):
        compileall.compile_dir(str(directory), quiet=1)


def cold_starts(spawns: int) -> None:
    """Spawn each pack ``spawns`` times, alternating; print the median, quartiles and ratio to the floor."""
    from ps019.engine.pack_process import PackProcess, choose_interpreter, read_pack_project

    times: dict[str, list[float]] = {name: [] for name in PACKS}
    for _ in range(spawns):
        for name, pack in PACKS.items():
            project = read_pack_project(pack)
            process = PackProcess(project, choose_interpreter(project), dict(os.environ), 60)
            times[name].append(process.start_seconds * 1e3)
            process.close(grace=5)
    floor = statistics.median(times["empty (floor)"])
    print(f"cold start, {spawns} spawns of each pack alternating; load average before: {_load()}")
    print("| pack | median ms | quartiles ms | x floor (median) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {q1:.0f}–{q3:.0f} | {median / floor:.2f} |")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def one_pass(pack: Path, resources, stack: str) -> dict:
    log = Path(os.environ["PS019_LOG_FILE"])
    log.write_text("")
    result = run_pass(pack, resources, stack=stack, dry_run=True, timeout=600)
    return {"start": result.timings["start"], "analyze": result.timings["analyze"],
            "analyze_stack": result.timings.get("analyze_stack", 0.0), "n": len(result.analyzed_urns),
            "diagnostics": len(result.diagnostics), "record": _record_seconds(log)}


def _record_seconds(log: Path) -> float | None:
    """What building, redacting, canonicalising, signing and storing the evidence record took inside the ps019 pack
    process (its decision log's ``evidence_written`` event); None for a pack that writes no record."""
    for line in reversed(log.read_text().splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "evidence_written":
            return float(event["seconds"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold-starts", type=int, default=0, metavar="N",
                        help="only measure cold start: N alternating spawns of each pack")
    args = parser.parse_args()
    from ps019.logging import configure_cli

    configure_cli("warning")  # stdout carries the table
    tmp = tempfile.mkdtemp(prefix="ps019-bench-")
    os.environ.update(XDG_DATA_HOME=tmp, PS019_EVIDENCE_STORE=f"sqlite:///{tmp}/evidence.db",
                      AWS_EC2_METADATA_DISABLED="true", PS019_LOG_FILE=f"{tmp}/decisions.jsonl",
                      PS019_LOG_LEVEL="info")
    compile_sources()
    if args.cold_starts:
        cold_starts(args.cold_starts)
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; preview passes; median of {args.repeat}; "
          f"load average before: {_load()}")
    rows = []
    for n in args.resources:
        path = Path(tmp) / f"export-{n}.json"
        path.write_text(json.dumps(make_export(n)))
        resources = load_stack_export(path, stack="organization/bench/dev").resources
        runs: dict[str, list[dict]] = {name: [] for name in PACKS}
        for _ in range(args.repeat):
            for name, pack in PACKS.items():  # alternate, so machine noise hits both alike
                runs[name].append(one_pass(pack, resources, "organization/bench/dev"))
        floor = None
        for name in PACKS:
            per_res = statistics.median(r["analyze"] / r["n"] for r in runs[name]) * 1e6
            start = statistics.median(r["start"] for r in runs[name]) * 1e3
            stack_s = statistics.median(r["analyze_stack"] for r in runs[name])
            if floor is None:
                floor = (per_res, start)
            records = [r["record"] for r in runs[name] if r["record"] is not None]
            # the record against the same pass's own analysis (every Analyze call), median over the repeats
            share = statistics.median(r["record"] / r["analyze"] for r in runs[name]) if records else None
            rows.append((n, name, per_res, per_res / floor[0], stack_s, start, start / floor[1],
                         runs[name][0]["diagnostics"], statistics.median(records) if records else None,
                         statistics.median(r["analyze"] for r in runs[name]), share))
    print("| resources | pack | Analyze µs/resource | x floor | AnalyzeStack s | cold start ms | x floor | diagnostics "
          "| analysis s | record s | record / analysis |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, name, per_res, ratio, stack_s, start, sratio, diags, record, analysis, share in rows:
        extra = f"{analysis:.2f} | {record:.2f} | {share:.1%}" if record is not None else f"{analysis:.2f} | — | —"
        print(f"| {n:,} | {name} | {per_res:,.0f} | {ratio:.2f} | {stack_s:.2f} | {start:,.0f} | {sratio:.2f} | {diags} "
              f"| {extra} |")


if __name__ == "__main__":
    main()
