"""The IAM and resource-policy controls on real programs, end to end: every corpus program that creates IAM or
resource policies has an ``iam-verdicts.json`` (hand-judged per resource and control), and this runs the bundled pack
over those programs through the engine stand-in (``ps019 analyze --program``, preview and update) and compares.

    .venv/bin/python -m tests.corpus.iam_verdicts [--mode preview|update|both] [--only SUBSTRING] [--jobs N]

``iam-verdicts.json``::

    {"judged_by": "...",
     "verdicts": [{"resource": "<type>::<name>", "control": "PS019-IAM-003", "at": "managedPolicyArns[1]",
                   "expected": "deny" | "advisory" | "allow", "why": "..."}]}

``at`` (optional) narrows an entry to the findings about one document of the resource (the path the message names,
``... at 'managedPolicyArns[1]'``). What ps019 said about an entry: ``deny`` (a mandatory finding), ``unverifiable``
(only "cannot be verified until update" advisories: computed values in preview), ``advisory``, ``allow`` (nothing), or
``not reached`` (an update stops at the first mandatory violation; resources after it, and the stack policies, are
not analysed, exactly as under ``pulumi up``). Outcomes:

* **false negative**: expected deny, ps019 allowed or only advised (in an update, also "unverifiable");
* **false positive**: expected allow or advisory, ps019 denied;
* **deferred**: expected deny, preview says "cannot be verified until update" (the update pass judges it);
* **advisory differs**: expected advisory (reported, not blocked), ps019 said nothing. ``allow`` means "must not
  block": an advisory there (a broad grant noted, a value known only at update) agrees;
* **unjudged**: a mandatory finding of an IAM/RBP control on a resource and control no entry covers.

The exit status is 1 when any outcome is a false negative, false positive, advisory difference or unjudged finding.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.corpus.run import PROGRAMS, analyse, programs

VERDICTS = "iam-verdicts.json"
PREFIXES = ("PS019-IAM-", "PS019-RBP-")
UNVERIFIABLE = "cannot be verified until update"
PROBLEMS = ("false negative", "false positive", "advisory differs", "unjudged")


@dataclass(frozen=True)
class Outcome:
    slug: str
    mode: str
    resource: str
    control: str
    at: str
    expected: str
    observed: str
    outcome: str  # agree | false negative | false positive | deferred | advisory differs | not reached | unjudged
    message: str = ""

    @property
    def key(self) -> str:
        return f"{self.slug} {self.mode} {self.resource} {self.control}" + (f" at {self.at}" if self.at else "")


def judged_programs(only: str | None = None) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(slug, CORPUS.json, iam-verdicts.json) of every program with verdicts."""
    out = []
    for slug, meta in programs(only):
        path = PROGRAMS / slug / VERDICTS
        if path.is_file():
            out.append((slug, meta, json.loads(path.read_text())))
    return out


def resource_key(urn: str) -> str:
    """``<type>::<name>`` of a URN (the resource's own type, not its parents')."""
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]}::{parts[-1]}"


def observe(diagnostics: list[dict[str, Any]]) -> str:
    if not diagnostics:
        return "allow"
    if any(d["level"] == "mandatory" for d in diagnostics):
        return "deny"
    if all(UNVERIFIABLE in d["message"] for d in diagnostics):
        return "unverifiable"
    return "advisory"


def classify(expected: str, observed: str, mode: str) -> str:
    if observed == "not reached":
        return "not reached"
    if expected == "deny":
        if observed == "deny":
            return "agree"
        return "deferred" if observed == "unverifiable" and mode == "preview" else "false negative"
    if observed == "deny":
        return "false positive"
    if expected == "advisory" and observed == "allow":
        return "advisory differs"
    return "agree"  # "allow" means "must not block": an advisory (a broad grant noted, a value known at update) is fine


def compare(slug: str, mode: str, verdicts: dict[str, Any], passes: list[dict[str, Any]]) -> list[Outcome]:
    """Every entry of ``verdicts`` against the ps019 pass of ``passes`` (the report's), plus unjudged findings."""
    ps019 = [p for p in passes if p.get("pack", {}).get("name") == "ps019"] or passes
    analyzed = {resource_key(u) for p in ps019 for u in p.get("analyzed_urns", [])}
    stack_analyzed = all(p.get("stack_analyzed", True) for p in ps019)
    diagnostics = [d for p in ps019 for d in p.get("diagnostics", []) if d.get("policy", "").startswith(PREFIXES)]
    stack_controls = {p["name"] for pass_ in ps019 for p in pass_.get("policies", []) if p.get("kind") == "stack"}
    out: list[Outcome] = []
    covered: set[tuple[str, str]] = set()  # (resource, control) pairs with an entry without "at"
    covered_at: dict[tuple[str, str], list[str]] = {}
    for entry in verdicts["verdicts"]:
        resource, control, at = entry["resource"], entry["control"], entry.get("at", "")
        if at:
            covered_at.setdefault((resource, control), []).append(at)
        else:
            covered.add((resource, control))
        mine = [d for d in diagnostics if d["policy"] == control and resource_key(d["urn"]) == resource
                and (not at or f"at '{at}'" in d["message"])]
        reached = stack_analyzed if control in stack_controls else resource in analyzed
        observed = observe(mine) if reached or mine else "not reached"
        out.append(Outcome(slug, mode, resource, control, at, entry["expected"], observed,
                           classify(entry["expected"], observed, mode),
                           "; ".join(d["message"][:300] for d in mine)))
    for d in diagnostics:
        pair = (resource_key(d["urn"]), d["policy"])
        if d["level"] != "mandatory" or pair in covered:
            continue
        if any(f"at '{at}'" in d["message"] for at in covered_at.get(pair, ())):
            continue
        out.append(Outcome(slug, mode, pair[0], pair[1], "", "(none)", "deny", "unjudged", d["message"][:300]))
    return out


def _run_chunk(slugs: list[str], modes: list[str]) -> list[dict[str, Any]]:
    from ps019.engine import PackPool

    judged = {slug: (meta, verdicts) for slug, meta, verdicts in judged_programs()}
    outcomes: list[dict[str, Any]] = []
    with PackPool() as pool:
        for slug in slugs:
            meta, verdicts = judged[slug]
            for mode in modes:
                result = analyse(slug, meta, mode, pool=pool)
                if result.exit_code not in (0, 1):
                    outcomes.append(asdict(Outcome(slug, mode, "(program)", "", "", "analyses", "exit 2",
                                                   "false negative", result.error[:300])))
                    continue
                outcomes.extend(asdict(o) for o in compare(slug, mode, verdicts, result.report["passes"]))
    return outcomes


def run(modes: list[str], only: str | None = None, jobs: int = 1) -> list[Outcome]:
    slugs = [slug for slug, _, _ in judged_programs(only)]
    if jobs <= 1 or len(slugs) < 2:
        rows = _run_chunk(slugs, modes)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        chunks = [slugs[i::jobs] for i in range(jobs)]
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as executor:
            rows = [row for chunk in executor.map(_run_chunk, chunks, [modes] * jobs) for row in chunk]
    order = {slug: i for i, slug in enumerate(slugs)}
    return sorted((Outcome(**row) for row in rows), key=lambda o: (order[o.slug], modes.index(o.mode)))


def summary(outcomes: list[Outcome], mode: str) -> dict[str, int]:
    mine = [o for o in outcomes if o.mode == mode]
    counts = {k: sum(o.outcome == k for o in mine) for k in
              ("agree", "false negative", "false positive", "deferred", "advisory differs", "not reached",
               "unjudged")}
    counts["deny entries"] = sum(o.expected == "deny" for o in mine if o.outcome != "unjudged")
    counts["allow/advisory entries"] = sum(o.expected in ("allow", "advisory") for o in mine)
    counts["programs"] = len({o.slug for o in mine})
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["preview", "update", "both"], default="both")
    parser.add_argument("--only", help="run only programs whose directory name contains this")
    parser.add_argument("--jobs", type=int, default=1, help="processes to spread the programs over")
    parser.add_argument("--json", help="write every outcome to this file")
    args = parser.parse_args(argv)
    modes = ["preview", "update"] if args.mode == "both" else [args.mode]
    started = time.monotonic()
    outcomes = run(modes, args.only, args.jobs)
    for o in outcomes:
        if o.outcome not in ("agree", "not reached"):
            print(f"{o.outcome.upper():17} {o.key}: expected {o.expected}, ps019 {o.observed}"
                  + (f"\n                  {o.message}" if o.message else ""))
    for mode in modes:
        counts = summary(outcomes, mode)
        print(f"{mode}: {counts['programs']} programs, {counts['deny entries']} deny and "
              f"{counts['allow/advisory entries']} allow/advisory entries: "
              f"{counts['false negative']} false negatives, {counts['false positive']} false positives, "
              f"{counts['deferred']} deferred to update, {counts['advisory differs']} advisory differences, "
              f"{counts['unjudged']} unjudged, {counts['not reached']} not reached (after a block)")
    print(f"total {time.monotonic() - started:.1f}s")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    return 1 if any(o.outcome in PROBLEMS for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
