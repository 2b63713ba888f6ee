"""ps019 against Pulumi's AWSGuard (Node.js, @pulumi/awsguard 0.3.1), per resource, on the same export in the same run.

    .venv/bin/python bench/pack_vs_awsguard.py --resources 1000 5000 --repeat 3

Both packs run in ONE engine pass (the stand-in drives them as `pulumi preview --policy-pack ps019 --policy-pack
awsguard` does: every resource goes to both packs), so they see the same resources over the same protocol. The
cost per pack is the time the stand-in spent in that pack's Remediate and Analyze calls, divided by the resources
analyzed (gRPC round trips included for both). The pack order alternates between repeats. ps019 runs with EVERY
control on (`{"all": "advisory"}`: nothing disabled, nothing blocks a preview) and the embedded evidence store in a
temporary directory; AWSGuard with every policy on (`new AwsGuard({all: "advisory"})`, tests/packs/awsguard).
Needs node/npm (scripts/node-packs installs AWSGuard from its lock file). Not a test: numbers go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import make_export  # noqa: E402

from ps019.engine import load_stack_export  # noqa: E402
from ps019.engine.runner import run_passes  # noqa: E402

PS019 = ROOT / "policypacks" / "ps019"
AWSGUARD = ROOT / "tests" / "packs" / "awsguard"
EVERY_CONTROL_ON = {"all": "advisory"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "node-packs")], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"scripts/node-packs failed: {proc.stderr.strip()}")
    from ps019.logging import configure_cli

    configure_cli("warning")
    tmp = tempfile.mkdtemp(prefix="ps019-bench-")
    os.environ.update(XDG_DATA_HOME=tmp, PS019_EVIDENCE_STORE=f"sqlite:///{tmp}/evidence.db",
                      AWS_EC2_METADATA_DISABLED="true")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"python {sys.version.split()[0]}, node {node}, {os.cpu_count()} cores; preview passes, both packs in one "
          f"pass; median of {args.repeat}")
    print("| resources | pack | Analyze µs/resource | x ps019 | AnalyzeStack ms | diagnostics | passed / failed / n/a |")
    print("|---|---|---|---|---|---|---|")
    for n in args.resources:
        path = Path(tmp) / f"export-{n}.json"
        path.write_text(json.dumps(make_export(n)))
        resources = load_stack_export(path, stack="organization/bench/dev").resources
        runs: dict[str, list] = {"ps019": [], "awsguard": []}
        for i in range(args.repeat):
            order = [("ps019", PS019, EVERY_CONTROL_ON), ("awsguard", AWSGUARD, None)]
            if i % 2:
                order.reverse()
            t0 = time.monotonic()
            results = run_passes([p for _, p, _ in order], resources, stack="organization/bench/dev", dry_run=True,
                                 policy_pack_configs=[c for _, _, c in order], timeout=600)
            for (name, _, _), result in zip(order, results):
                runs[name].append(result)
            print(f"  run {i + 1}: {time.monotonic() - t0:.1f} s", file=sys.stderr)
        base = None
        for name in ("ps019", "awsguard"):
            per_res = statistics.median(r.timings["analyze"] / len(r.analyzed_urns) for r in runs[name]) * 1e6
            stack_ms = statistics.median(r.timings.get("analyze_stack", 0.0) for r in runs[name]) * 1e3
            base = base or per_res
            c = runs[name][0].compliance
            print(f"| {n:,} | {name} | {per_res:,.0f} | {per_res / base:.2f} | {stack_ms:,.0f} | "
                  f"{len(runs[name][0].diagnostics)} | {c['passed']:,} / {c['failed']:,} / {c['not_applicable']:,} |")


if __name__ == "__main__":
    main()
