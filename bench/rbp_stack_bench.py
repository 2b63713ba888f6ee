#!/usr/bin/env python3
"""PS019-RBP-001 (S3 bucket policies, a stack control) at AnalyzeStack, side by side in one run: converting every
resource of the stack (what the control did when it iterated the adapter's lazy sequence) against converting only the
buckets, bucket policies and access blocks it reads (``LazyViews.of_type``).

    .venv/bin/python bench/rbp_stack_bench.py --resources 10000 50000 --repeat 3

For each size it builds the AnalyzeStack request resources the engine stand-in sends (bench/synthetic.py's export,
outputs marshalled as on the wire; one resource in six is a bucket) plus a public bucket policy, then alternates the
two ways over the same resources and reports the median seconds of the control's call. Both must give the same
violations (asserted). Not a test: numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import make_export  # noqa: E402

from ps019.controls.base import RunContext  # noqa: E402
from ps019.controls.resource_policy.s3_bucket_policy import CONTROL  # noqa: E402
from ps019.engine import marshal_properties  # noqa: E402
from ps019.pack import convert  # noqa: E402
from ps019.pack.servicer import LazyViews  # noqa: E402

PUBLIC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                  "Resource": "arn:aws:s3:::bench-bucket-0/*"}]}


def stack_resources(n: int) -> list:
    from pulumi.runtime.proto import analyzer_pb2

    export = make_export(n)["deployment"]["resources"]
    policy = {"urn": "urn:pulumi:dev::bench::aws:s3/bucketPolicy:BucketPolicy::public", "id": "p",
              "type": "aws:s3/bucketPolicy:BucketPolicy", "parent": export[0]["urn"],
              "outputs": {"bucket": "bench-bucket-0", "policy": json.dumps(PUBLIC)}}
    out = []
    for r in [*export, policy]:
        out.append(analyzer_pb2.AnalyzerResource(
            type=r["type"], urn=r["urn"], name=r["urn"].rsplit("::", 1)[-1],
            properties=marshal_properties(r.get("outputs", {}), dry_run=False), parent=r.get("parent", ""),
            dependencies=r.get("dependencies", [])))
    return out


def every_resource(resources: list) -> list:
    """The control as it was: iterating the lazy sequence converted every resource."""
    views = tuple(convert.request_view(r) for r in resources)
    return list(CONTROL.check(views, CTX, PARAMS))


def only_read_types(resources: list) -> list:
    return list(CONTROL.check(LazyViews(resources), CTX, PARAMS))


CTX = RunContext(organization="acme", project="bench", stack="dev", dry_run=False, tier="production")
PARAMS = CONTROL.params({})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| resources | way | median s | min s | violations |")
    print("|---|---|---:|---:|---:|")
    for n in args.resources:
        resources = stack_resources(n)
        times: dict[str, list[float]] = {"every resource converted (before)": [], "only read types (now)": []}
        results = {}
        for _ in range(args.repeat):
            for label, fn in (("every resource converted (before)", every_resource),
                              ("only read types (now)", only_read_types)):
                t0 = time.perf_counter()
                results[label] = fn(resources)
                times[label].append(time.perf_counter() - t0)
        before, now = results.values()
        assert [(v.urn, v.message) for v in before] == [(v.urn, v.message) for v in now] and now, "results differ"
        for label, ts in times.items():
            print(f"| {len(resources):,} | {label} | {statistics.median(ts):.3f} | {min(ts):.3f} | "
                  f"{len(results[label])} |")


if __name__ == "__main__":
    main()
