#!/usr/bin/env python3
"""IAM analysis benchmark: ps019 vs cloudsplaining vs parliament vs checkov on one corpus, in one run (not a test).

    .venv/bin/python bench/iam_bench.py                 # full run, writes bench/out/iam_bench.json
    .venv/bin/python bench/iam_bench.py --quick         # fewer repetitions

The corpus is every fixture under tests/data/iam/ (identity, trust, resource), every grant of the real-program corpus
(tests/data/iam/corpus/, hand-judged; see bench/iam_corpus.py) and generated documents (seeded): many-statement
policies, ``"Action": "*"``, ``NotAction``, service wildcards, wildcard patterns, conditions and Deny statements.
ps019 runs in this (project) interpreter; cloudsplaining and parliament run in ``bench/.venv-iam`` and checkov in
``bench/.venv-checkov`` (their policy_sentry pins conflict), each created here from bench/requirements-*.txt when
missing, in worker subprocesses fed the same corpus. checkov reads CloudFormation, so each document is wrapped in the
resource that carries it (AWS::IAM::ManagedPolicy, AWS::IAM::Role, AWS::S3::BucketPolicy, AWS::ECR::Repository, ...).

Each tool gets the raw document text (parsing is part of its cost) and, per document, the median of ``--reps``
timed calls after one warm-up pass over the whole corpus (so one-off database loads are reported separately as
"first call"). Verdict mapping for the peers is documented in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "iam"
PEER_VENV = ROOT / "bench" / ".venv-iam"
PEER_PY = PEER_VENV / "bin" / "python"
CHECKOV_VENV = ROOT / "bench" / ".venv-checkov"
CHECKOV_PY = CHECKOV_VENV / "bin" / "python"
OUT = ROOT / "bench" / "out" / "iam_bench.json"

# ----------------------------------------------------------------------------------------------------------------
# corpus


def fixture_corpus() -> list[dict]:
    docs = []
    for path in sorted(FIXTURES.glob("*/*/*.json")):
        kind, verdict = path.parts[-3], path.parts[-2]
        if kind not in ("identity", "trust", "resource"):
            continue
        opts = {"can_write": True if "write-role" in path.stem else None,
                "owners": [] if "owner-unknown" in path.stem else ["123456789012"]}
        docs.append({"id": f"fixture:{kind}/{verdict}/{path.stem}", "kind": kind, "expected": verdict,
                     "text": path.read_text(), "star": _is_star(path.read_text()), "opts": opts})
    return docs


def real_corpus() -> list[dict]:
    """Every grant of the real-program corpus, as the same text for every tool (managed ARNs expanded by ps019's
    dataset; a grant whose ARN the dataset lacks is left out, since no tool can see its content)."""
    sys.path.insert(0, str(ROOT / "sdk"))
    sys.path.insert(0, str(ROOT / "bench"))
    import iam_corpus

    docs = []
    for gid, grant, _source in iam_corpus.grants():
        kind, text = iam_corpus.document_of(grant)
        if text is None:
            continue
        docs.append({"id": f"corpus:{gid}", "kind": kind, "expected": grant["expected"], "text": text,
                     "star": _is_star(text), "resource": grant.get("resource", ""),
                     "opts": {"can_write": grant.get("can_write"), "owners": [iam_corpus.OWNER],
                              # ps019 reads an attached managed policy with its role's trust, as PS019-IAM-003
                              # does; the peers judge the document alone
                              **({"policy_arn": grant["policy_arn"], "role_trust": grant["role_trust_document"]}
                                 if "role_trust_document" in grant else {})}})
    return docs


def _is_star(text: str) -> bool:
    """Documents with an ``"Action": "*"`` (or ``*:*``) entry or a NotAction: the expensive case for other tools."""
    if "NotAction" in text:
        return True
    try:
        statements = json.loads(text).get("Statement", [])
    except (ValueError, AttributeError):
        return False
    statements = statements if isinstance(statements, list) else [statements]
    for stmt in statements:
        actions = stmt.get("Action", []) if isinstance(stmt, dict) else []
        actions = actions if isinstance(actions, list) else [actions]
        if any(a in ("*", "*:*") for a in actions):
            return True
    return False


_ACTION_POOL = [
    "s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "s3:Get*", "s3:*", "ec2:Describe*",
    "ec2:RunInstances", "ec2:TerminateInstances", "iam:PassRole", "iam:CreatePolicyVersion", "iam:List*",
    "iam:AttachRolePolicy", "iam:CreateRole", "lambda:CreateFunction", "lambda:InvokeFunction", "lambda:Update*",
    "kms:Decrypt", "kms:Encrypt", "secretsmanager:GetSecretValue", "ssm:GetParameter*", "dynamodb:*",
    "dynamodb:Query", "logs:PutLogEvents", "logs:CreateLogStream", "sts:AssumeRole", "sts:GetCallerIdentity",
    "cloudwatch:PutMetricData", "sqs:SendMessage", "sns:Publish", "ecr:GetAuthorizationToken", "ecr:BatchGet*",
]
_RESOURCE_POOL = [
    "*", "arn:aws:s3:::app-bucket", "arn:aws:s3:::app-bucket/*", "arn:aws:iam::123456789012:role/app-*",
    "arn:aws:lambda:us-east-1:123456789012:function:app-*", "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
]
_CONDITIONS = [
    None, None, {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
    {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {"Bool": {"aws:SecureTransport": "true"}},
    {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
    {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
]


def generated_corpus(n: int, seed: int = 19) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        shape = i % 10
        statements = []
        for _ in range(rng.randint(1, 12)):
            stmt: dict = {"Sid": f"S{len(statements)}", "Effect": "Allow" if rng.random() < 0.85 else "Deny"}
            stmt["Action"] = rng.sample(_ACTION_POOL, rng.randint(1, 6))
            stmt["Resource"] = rng.sample(_RESOURCE_POOL, rng.randint(1, 3))
            cond = rng.choice(_CONDITIONS)
            if cond:
                stmt["Condition"] = cond
            statements.append(stmt)
        star = False
        if shape == 0:
            statements.insert(0, {"Effect": "Allow", "Action": "*", "Resource": "*"})
            star = True
        elif shape == 1:
            statements.insert(0, {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"})
            star = True
        elif shape == 2:
            statements.append({"Effect": "Deny", "NotAction": rng.sample(_ACTION_POOL, 4), "Resource": "*"})
            statements.insert(0, {"Effect": "Allow", "Action": "*", "Resource": "*"})
            star = True
        docs.append({"id": f"generated:{i:04d}", "kind": "identity", "expected": None, "star": star,
                     "text": json.dumps({"Version": "2012-10-17", "Statement": statements})})
    return docs


# ----------------------------------------------------------------------------------------------------------------
# tools (each: text, kind -> "allow" | "deny" | "error")


def ps019_tool():
    sys.path.insert(0, str(ROOT / "sdk"))
    sys.path.insert(0, str(ROOT / "bench"))
    from iam_corpus import with_role_trust
    from ps019.iam import analyze_policy

    def ps019(text, kind, opts=None):
        opts = opts or {}
        result = analyze_policy(text, kind, can_write=opts.get("can_write"), owner_accounts=opts.get("owners", ()))
        if "role_trust" in opts:
            result = with_role_trust(result, opts["policy_arn"], opts["role_trust"])
        return result.verdict

    return {"ps019": ps019}


PARLIAMENT_ERROR = {"EXCEPTION", "MALFORMED_JSON", "MALFORMED", "INVALID_VERSION"}
PARLIAMENT_DENY = {
    "RESOURCE_POLICY_PRIVILEGE_ESCALATION", "PERMISSIONS_MANAGEMENT_ACTIONS", "PRIVILEGE_ESCALATION",
    "CREDENTIALS_EXPOSURE", "SENSITIVE_ACCESS", "NOTPRINCIPAL_WITH_ALLOW", "NOTRESOURCE_WITH_ALLOW",
    "SINGLE_VALUE_CONDITION_TOO_PERMISSIVE",
}
CLOUDSPLAINING_CATEGORIES = ("PrivilegeEscalation", "DataExfiltration", "ResourceExposure", "ServiceWildcard",
                             "CredentialsExposure", "InfrastructureModification")


def peer_tools():
    import logging

    logging.disable(logging.CRITICAL)
    from cloudsplaining.command.scan_policy_file import scan_policy
    from cloudsplaining.scan.assume_role_policy_document import AssumeRolePolicyDocument
    from parliament import analyze_policy_string

    from cloudsplaining.scan.resource_policy_document import ResourcePolicyDocument

    def cloudsplaining(text, kind, opts=None):
        try:
            doc = json.loads(text)
            if kind == "trust":
                return "deny" if AssumeRolePolicyDocument(doc).role_assumable_by_any_principal else "allow"
            if kind == "resource":
                return "deny" if ResourcePolicyDocument(doc).internet_accessible_actions else "allow"
            results = scan_policy(doc)
        except Exception:  # noqa: BLE001 - the peer's own failure is its "error" verdict
            return "error"
        return "deny" if any((results.get(c) or {}).get("findings") for c in CLOUDSPLAINING_CATEGORIES) else "allow"

    def parliament(text, kind, opts=None):
        try:
            policy = analyze_policy_string(text, include_community_auditors=True)
        except Exception:  # noqa: BLE001
            return "error"
        issues = {f.issue for f in policy.findings}
        if issues & PARLIAMENT_ERROR:
            return "error"
        return "deny" if issues & PARLIAMENT_DENY else "allow"

    return {"cloudsplaining": cloudsplaining, "parliament": parliament}


# checkov: the CloudFormation resource that carries each kind of document, and the checks that judge the policy (its
# other checks on the same resource - encryption, tag immutability, logging - are not about the policy).
CHECKOV_POLICY_WORDS = ("policy", "iam", "principal", "public", "privilege", "permission", "credential",
                        "exfiltration", "wildcard", "assume", "admin")
_CFN_RESOURCE = {
    "s3": ("AWS::S3::BucketPolicy", lambda d: {"Bucket": "b", "PolicyDocument": d}),
    "ecr": ("AWS::ECR::Repository", lambda d: {"RepositoryPolicyText": d}),
    "kms": ("AWS::KMS::Key", lambda d: {"KeyPolicy": d}),
    "sqs": ("AWS::SQS::QueuePolicy", lambda d: {"Queues": ["q"], "PolicyDocument": d}),
    "sns": ("AWS::SNS::TopicPolicy", lambda d: {"Topics": ["t"], "PolicyDocument": d}),
    "secretsmanager": ("AWS::SecretsManager::ResourcePolicy", lambda d: {"SecretId": "s", "ResourcePolicy": d}),
    "events": ("AWS::Events::EventBus", lambda d: {"Name": "bus", "Policy": d}),
    "execute-api": ("AWS::ApiGateway::RestApi", lambda d: {"Name": "api", "Policy": d}),
}


def _cfn_template(text: str, kind: str, resource: str = "") -> dict:
    doc = json.loads(text)
    if kind == "identity":
        rtype, props = "AWS::IAM::ManagedPolicy", {"PolicyDocument": doc}
    elif kind == "trust":
        rtype, props = "AWS::IAM::Role", {"AssumeRolePolicyDocument": doc}
    elif resource.startswith("aws:lambda/permission"):
        st = doc["Statement"][0]
        principal = st["Principal"] if st["Principal"] == "*" else next(iter(st["Principal"].values()))
        rtype = "AWS::Lambda::Permission"
        props = {"Action": st["Action"], "FunctionName": st.get("Resource", "f"), "Principal": principal}
        for op in st.get("Condition", {}).values():
            for key, value in op.items():
                if key.lower() == "aws:sourcearn":
                    props["SourceArn"] = value
                if key.lower() == "aws:sourceaccount":
                    props["SourceAccount"] = value
    else:
        statements = doc.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        actions = [a for s in statements if isinstance(s, dict)
                   for a in (s.get("Action") or s.get("NotAction") or [])]
        actions = [actions] if isinstance(actions, str) else actions
        prefix = next((str(a).split(":")[0].lower() for a in actions if ":" in str(a)), "s3")
        rtype, make = _CFN_RESOURCE.get(prefix, _CFN_RESOURCE["s3"])
        props = make(doc)
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Doc": {"Type": rtype, "Properties": props}}}


def checkov_tools():
    import logging
    import tempfile

    logging.disable(logging.CRITICAL)
    from checkov.cloudformation.runner import Runner
    from checkov.runner_filter import RunnerFilter

    workdir = tempfile.mkdtemp(prefix="ps019-checkov-")
    path = os.path.join(workdir, "template.json")

    def checkov(text, kind, opts=None):
        try:
            template = _cfn_template(text, kind, (opts or {}).get("resource", ""))
        except Exception:  # noqa: BLE001 - not JSON: checkov cannot read it either
            return "error"
        with open(path, "w") as fh:
            json.dump(template, fh)
        try:
            report = Runner().run(root_folder=None, files=[path], runner_filter=RunnerFilter(framework=["cloudformation"]))
        except Exception:  # noqa: BLE001
            return "error"
        if report.parsing_errors:
            return "error"
        failed = [c for c in report.failed_checks if any(w in c.check_name.lower() for w in CHECKOV_POLICY_WORDS)]
        return "deny" if failed else "allow"

    return {"checkov": checkov}


class _Timeout(BaseException):  # not Exception: the tool wrappers catch Exception
    pass


def _call(fn, doc: dict, limit_s: float | None) -> tuple[str, float]:
    """One timed call; with ``limit_s`` a call running longer is interrupted (SIGALRM) and reported as
    ``("timeout", limit_s)``, a lower bound of its real cost."""
    import signal

    if limit_s:
        def _alarm(*_):
            raise _Timeout

        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit_s)
    t = time.perf_counter()
    try:
        verdict = fn(doc["text"], doc["kind"], dict(doc.get("opts") or {}, resource=doc.get("resource", "")))
    except _Timeout:
        return "timeout", limit_s or 0.0
    finally:
        if limit_s:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return verdict, time.perf_counter() - t


def measure(tools: dict, corpus: list[dict], reps: int, limits: dict | None = None) -> dict:
    """``limits``: per-call time limit in seconds by document origin ("fixture"/"generated"); None = unlimited."""
    out = {}
    warm_doc = {"text": '{"Statement":{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}}', "kind": "identity",
                "opts": {}}
    for name, fn in tools.items():
        _, first = _call(fn, warm_doc, None)  # loads the tool's database: reported as first_call
        verdicts, warm = [], []
        for d in corpus:  # warm-up pass, also gives the verdicts
            verdict, elapsed = _call(fn, d, (limits or {}).get(d["id"].split(":")[0]))
            verdicts.append(verdict)
            warm.append(elapsed)
        # Repetitions go round-robin over the corpus, so a burst of load on a shared machine hits every document
        # alike instead of inflating a few. Timed-out or seconds-long calls are not repeated (their warm-up time
        # stands).
        slow = [v == "timeout" or t >= 1.0 for v, t in zip(verdicts, warm)]
        samples = [[t] if is_slow else [] for t, is_slow in zip(warm, slow)]
        for _ in range(max(reps, 1)):
            for i, d in enumerate(corpus):
                if not slow[i]:
                    verdict, elapsed = _call(fn, d, (limits or {}).get(d["id"].split(":")[0]))
                    samples[i].append(elapsed)
                    if verdict == "timeout":  # fast once, over the limit now (machine load): keep it visible
                        verdicts[i] = "timeout"
        per_doc = [statistics.median(x) for x in samples]
        out[name] = {"first_call_s": first, "per_doc_s": per_doc, "verdicts": verdicts,
                     "timeouts": sum(v == "timeout" for v in verdicts)}
    return out


# ----------------------------------------------------------------------------------------------------------------
# peers' venv


def ensure_peer_venv(venv: Path = PEER_VENV, requirements: str = "requirements-iam.txt") -> None:
    python = venv / "bin" / "python"
    if python.exists():
        return
    print(f"creating {venv} (python -m venv + pip install -r bench/{requirements}) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / requirements)], check=True)


def _subset(result: dict, n: int) -> dict:
    return {k: (v[:n] if isinstance(v, list) else v) for k, v in result.items()}


def run_peers(corpus: list[dict], args) -> dict:
    out = {}
    for venv, requirements, tools in ((PEER_VENV, "requirements-iam.txt", "cloudsplaining,parliament"),
                                      (CHECKOV_VENV, "requirements-checkov.txt", "checkov")):
        ensure_peer_venv(venv, requirements)
        cmd = [str(venv / "bin" / "python"), __file__, "--worker", tools, "--reps", str(args.peer_reps),
               "--fixture-limit", str(args.fixture_limit), "--generated-limit", str(args.generated_limit)]
        proc = subprocess.run(cmd, input=json.dumps(corpus), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"peer worker ({tools}) failed:\n{proc.stderr[-3000:]}")
        out.update(json.loads(proc.stdout))
    return out


def peer_versions() -> dict:
    out = {}
    for python, packages in ((PEER_PY, ("cloudsplaining", "parliament", "policy_sentry")), (CHECKOV_PY, ("checkov",))):
        code = f"import importlib.metadata as m, json; print(json.dumps({{p: m.version(p) for p in {packages!r}}}))"
        out.update(json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                             check=True).stdout))
    return out


# ----------------------------------------------------------------------------------------------------------------
# cold start of ps019.iam (fresh interpreters)


def cold_start(samples: int = 9) -> dict:
    """Fresh interpreters, with bytecode caching on (in a temporary PYTHONPYCACHEPREFIX, primed once), as an
    installed package would run: ``import ps019.model`` (which the pack imports anyway), then ``import ps019.iam``
    (its marginal cost), then the lazy index load, then the first analysis."""
    import tempfile

    code = (
        "import time, sys; sys.path.insert(0, %r); t0 = time.perf_counter()\n"
        "import ps019.model; t1 = time.perf_counter()\n"
        "import ps019.iam; t2 = time.perf_counter()\n"
        "from ps019.iam import index; index._raw(); t3 = time.perf_counter()\n"
        "ps019.iam.analyze_policy('{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:Get*\",\"Resource\":\"*\"}}')\n"
        "t4 = time.perf_counter(); print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)" % str(ROOT / "sdk")
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)  # prime bytecode
        rows = []
        for _ in range(samples):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
            rows.append([float(x) for x in out])
        bare = []
        for _ in range(samples):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            bare.append(time.perf_counter() - t)
    return {
        "import_ps019_model_ms": statistics.median(r[0] for r in rows) * 1000,
        "import_ps019_iam_marginal_ms": statistics.median(r[1] for r in rows) * 1000,
        "index_load_ms": statistics.median(r[2] for r in rows) * 1000,
        "first_analysis_ms": statistics.median(r[3] for r in rows) * 1000,
        "bare_interpreter_ms": statistics.median(bare) * 1000,
    }


# ----------------------------------------------------------------------------------------------------------------
# report


def summarise(corpus: list[dict], results: dict) -> dict:
    star_idx = [i for i, d in enumerate(corpus) if d["star"]]
    summary = {}
    for tool, r in results.items():
        times = r["per_doc_s"]
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        star_times = [times[i] for i in star_idx]
        summary[tool] = {
            "median_ms": median * 1000,
            "p95_ms": p95 * 1000,
            "max_ms": max(times) * 1000,
            "star_notaction_median_ms": statistics.median(star_times) * 1000,
            "star_notaction_max_ms": max(star_times) * 1000,
            "star_notaction_max_over_median": max(star_times) / median,
            "star_notaction_median_over_median": statistics.median(star_times) / median,
            "star_notaction_p95_over_median": (statistics.quantiles(star_times, n=20)[-1] / median
                                               if len(star_times) > 1 else max(star_times) / median),
            "first_call_ms": r["first_call_s"] * 1000,
            "total_corpus_s": sum(times),
            "timeouts": r.get("timeouts", 0),
        }
        fixtures = [(d, v) for d, v in zip(corpus, r["verdicts"]) if d["expected"] and d["id"].startswith("fixture:")]
        wrong = [(d["id"], d["expected"], v) for d, v in fixtures if v != d["expected"]]
        summary[tool]["fixture_agreement"] = f"{len(fixtures) - len(wrong)}/{len(fixtures)}"
        summary[tool]["fixture_disagreements"] = wrong
        real = [(d, v) for d, v in zip(corpus, r["verdicts"]) if d["id"].startswith("corpus:")]
        if real:
            deny = [(d, v) for d, v in real if d["expected"] == "deny"]
            allow = [(d, v) for d, v in real if d["expected"] == "allow"]
            summary[tool]["corpus"] = {
                "grants": len(real), "hand_deny": len(deny), "hand_allow": len(allow),
                "false_negatives": sum(v != "deny" for _, v in deny),
                "false_positives": sum(v != "allow" for _, v in allow),
                "errors_or_timeouts": sum(v in ("error", "timeout") for _, v in real),
                "median_ms": statistics.median(times[i] for i, d in enumerate(corpus)
                                               if d["id"].startswith("corpus:")) * 1000,
                "max_ms": max(times[i] for i, d in enumerate(corpus) if d["id"].startswith("corpus:")) * 1000,
                "missed": [d["id"] for d, v in deny if v != "deny"],
                "wrongly_denied": [d["id"] for d, v in allow if v != "allow"],
            }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description="ps019 IAM benchmark")
    parser.add_argument("--generated", type=int, default=400, help="generated documents added to the fixtures")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per document per tool")
    parser.add_argument("--quick", action="store_true", help="--generated 100 --reps 3")
    parser.add_argument("--peer-generated", type=int, default=30,
                        help="generated documents the (slow) peers also get; all fixtures are always included")
    parser.add_argument("--peer-reps", type=int, default=1, help="timed calls per document per peer")
    parser.add_argument("--fixture-limit", type=float, default=15.0,
                        help="per-call limit (s) for peers on fixtures; longer calls count as timeout")
    parser.add_argument("--generated-limit", type=float, default=2.0,
                        help="per-call limit (s) for peers on generated documents")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        corpus = json.loads(sys.stdin.read())
        limits = {"fixture": args.fixture_limit, "generated": args.generated_limit, "corpus": args.fixture_limit}
        tools = checkov_tools() if args.worker == "checkov" else peer_tools()
        json.dump(measure(tools, corpus, args.reps, limits), sys.stdout)
        return
    if args.quick:
        args.generated, args.reps = 100, 3
    fixtures = fixture_corpus() + real_corpus()
    generated = generated_corpus(args.generated)
    corpus = fixtures + generated
    peer_corpus = fixtures + generated[: args.peer_generated]
    ps019_full = measure(ps019_tool(), corpus, args.reps)
    results = {"ps019": _subset(ps019_full["ps019"], len(peer_corpus))}
    results.update(run_peers(peer_corpus, args))
    summary = {"ps019 (full corpus)": summarise(corpus, ps019_full)["ps019"], **summarise(peer_corpus, results)}
    report = {
        "command": "  ".join(["python bench/iam_bench.py", *sys.argv[1:]]),
        "corpus": {"documents": len(corpus), "fixtures_and_real": len(fixtures),
                   "real_program_grants": sum(1 for d in corpus if d["id"].startswith("corpus:")),
                   "star_or_notaction": sum(1 for d in corpus if d["star"]), "peer_documents": len(peer_corpus),
                   "peer_star_or_notaction": sum(1 for d in peer_corpus if d["star"])},
        "peer_limits_s": {"fixture": args.fixture_limit, "generated": args.generated_limit},
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "peer_versions": peer_versions(),
        "cold_start": cold_start(),
        "tools": summary,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"corpus: {report['corpus']}")
    print(f"{'tool':20} {'median ms':>10} {'p95 ms':>10} {'max ms':>10} {'*/NotAction median,p95,max / median':>36} "
          f"{'timeouts':>8} {'fixtures ok':>12}")
    for tool, s in summary.items():
        ratios = (f"{s['star_notaction_median_over_median']:.2f}, {s['star_notaction_p95_over_median']:.2f}, "
                  f"{s['star_notaction_max_over_median']:.2f}")
        print(f"{tool:20} {s['median_ms']:10.3f} {s['p95_ms']:10.3f} {s['max_ms']:10.3f} {ratios:>36} "
              f"{s['timeouts']:8d} {s['fixture_agreement']:>12}")
    print("cold start:", {k: round(v, 1) for k, v in report["cold_start"].items()})
    print(f"\nreal-program corpus (hand-judged): {'tool':16} {'FN':>4} {'FP':>4} {'err':>4} {'median ms':>10} {'max ms':>10}")
    for tool, s in summary.items():
        c = s.get("corpus")
        if c and tool != "ps019 (full corpus)":
            print(f"{'':35}{tool:16} {c['false_negatives']:>4} {c['false_positives']:>4} {c['errors_or_timeouts']:>4} "
                  f"{c['median_ms']:10.3f} {c['max_ms']:10.3f}   (of {c['hand_deny']} deny, {c['hand_allow']} allow)")
    for tool, s in summary.items():
        if not tool.startswith("ps019") and s["fixture_disagreements"]:
            print(f"\n{tool} disagrees with the expected verdict on:")
            for fid, expected, got in s["fixture_disagreements"]:
                print(f"  {fid}: expected {expected}, got {got}")
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
