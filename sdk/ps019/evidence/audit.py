"""The auditor's side of evidence, as pure functions over stored records (no I/O, no store access).

* :func:`sample` -- a deterministic, reproducible sample of a population (SHA-256 ranking, see its docstring);
* :data:`REQUIRED_FIELDS` / :func:`missing_fields` -- what "complete evidence" means for a production update;
* :func:`parse_stack_history` / :func:`reconcile` -- ``pulumi stack history --json`` against the evidence;
* :func:`compare_state` -- post-release verification of a stack's state (digested by ``ps019 verify``, the CLI edge,
  exactly as the pack digests it) against the last update record (same resources, same input digests);
* :func:`percentile` -- the nearest-rank percentile used by the metrics report.

The CLI (``ps019.cli.evidence``) and the report (``ps019.evidence.report``) do the I/O around these.
"""

from __future__ import annotations


import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from ps019.errors import InputError
from ps019.evidence.chain import verify_record

# ------------------------------------------------------------------------------------------------------------------
# Deterministic sampling
# ------------------------------------------------------------------------------------------------------------------

SAMPLE_ALGORITHM = "ps019-sample-v1: rank = sha256(seed + ':' + record_id), take the n lowest ranks"


def sample_rank(seed: str | int, record_id: str) -> str:
    """The rank of one record in a seeded sample (hex SHA-256 of ``"<seed>:<record_id>"``)."""
    return hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()


def sample(records: Iterable[Any], n: int, seed: str | int, *, record_id: Callable[[Any], str] | None = None
           ) -> list[Any]:
    """The ``n`` records with the lowest seeded rank, in rank order.

    Why a hash ranking instead of ``random.shuffle``: the result depends only on the seed and the set of record IDs
    (not on the order a store returns them, nor on Python's PRNG), so an auditor can re-derive the same sample with
    any tool (``sha256sum``), and adding records to the population changes the sample only where a new record ranks
    lower -- a sample drawn last month is still recognisable.
    """
    if n < 0:
        raise InputError("sample size must be >= 0")
    key = record_id or _record_id_of
    ranked = sorted(((sample_rank(seed, key(r)), key(r), r) for r in records), key=lambda t: (t[0], t[1]))
    return [r for _, _, r in ranked[:n]]


def _record_id_of(item: Any) -> str:
    if isinstance(item, Mapping):
        return item["record_id"]
    doc = getattr(item, "document", None)
    if isinstance(doc, Mapping):
        return doc["record_id"]
    return item.record_id


# ------------------------------------------------------------------------------------------------------------------
# Evidence completeness
# ------------------------------------------------------------------------------------------------------------------


def _get(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _present(doc: Mapping[str, Any], path: str) -> bool:
    value = _get(doc, path)
    return value not in (None, "", [], {})


def _approval_or_break_glass(doc: Mapping[str, Any]) -> bool:
    if any(a.get("verified") for a in doc.get("approvals") or []):
        return True
    bg = doc.get("break_glass") or {}
    return bool(bg.get("verified"))


def _resources_digested(doc: Mapping[str, Any]) -> bool:
    return all(r.get("inputs_digest") for r in doc.get("resources") or [])


@dataclass(frozen=True)
class RequiredField:
    name: str
    clause: str
    check: Callable[[Mapping[str, Any]], bool]


# THE definition of "every required field verified" for a production update (PS-019 §3 "Production deployments must
# retain timestamps, actor identity, artifact version, environment target, and approver evidence"; §4 "immutable
# deployment records showing artifact digest"; release gates "rollback plan, monitoring plan"). docs/auditor-guide.md
# renders this list; change it here only.
REQUIRED_FIELDS: tuple[RequiredField, ...] = (
    RequiredField("started_at", "§3 timestamps", lambda d: _present(d, "started_at")),
    RequiredField("ended_at", "§3 timestamps", lambda d: _present(d, "ended_at")),
    RequiredField("actor.verified", "§3 actor identity (verified, not claimed)",
                  lambda d: bool(_get(d, "actor.verified")) and _present(d, "actor.id")),
    RequiredField("ci.run", "§4 CI logs (run URL or ID)",
                  lambda d: _present(d, "ci.run_url") or _present(d, "ci.run_id")),
    RequiredField("artifact.git_commit", "§3 artifact version", lambda d: _present(d, "artifact.git_commit")),
    RequiredField("artifact.source_digest", "§4 artifact digest", lambda d: _present(d, "artifact.source_digest")),
    RequiredField("artifact.policy_pack", "§4 policy gates (pack name, version, code digest)",
                  lambda d: all(_present(d, f"artifact.policy_pack.{f}") for f in ("name", "version", "code_digest"))),
    RequiredField("environment", "§3 environment target", lambda d: d.get("environment") not in (None, "", "unknown")),
    RequiredField("change_class", "§2 change class", lambda d: _present(d, "change_class")),
    RequiredField("change_request", "§4 PR/MR with linked ticket", lambda d: _present(d, "change_request")),
    RequiredField("approval.verified", "§3 approver evidence (a verified approval, or a verified break-glass grant)",
                  _approval_or_break_glass),
    RequiredField("resources.inputs_digest", "§4 what changed (every resource digested)", _resources_digested),
    RequiredField("rollback_plan", "release gates: rollback plan", lambda d: _present(d, "rollback_plan")),
    RequiredField("monitoring_plan", "release gates: monitoring plan", lambda d: _present(d, "monitoring_plan")),
    RequiredField("chain", "§4 immutable record (sequence, prev_hash, hash)",
                  lambda d: all(_present(d, f) for f in ("sequence", "prev_hash", "hash"))),
)


def missing_fields(document: Mapping[str, Any]) -> list[str]:
    """Names of the :data:`REQUIRED_FIELDS` this record does not satisfy (empty list = complete)."""
    return [f.name for f in REQUIRED_FIELDS if not f.check(document)]


def is_production_update(document: Mapping[str, Any]) -> bool:
    return document.get("kind") == "update" and document.get("environment") == "production"


# ------------------------------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``p`` percent of the values <= it
    (``sorted(values)[ceil(p/100 * n) - 1]``). None for an empty list. Always one of the observed values, which is
    what an auditor can check by hand."""
    if not values:
        return None
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


# ------------------------------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------------------------------


def parse_time(text: str | None, *, now: datetime | None = None, what: str = "time") -> datetime | None:
    """``2026-11-01``, ``2026-11-01T12:00:00Z`` (naive = UTC), or relative ``30d`` / ``12h`` / ``90m`` before now."""
    if text is None or text == "":
        return None
    s = text.strip()
    if s[-1:] in ("d", "h", "m", "w") and s[:-1].isdigit():
        unit = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}[s[-1]]
        return (now or datetime.now(timezone.utc)) - timedelta(**{unit: int(s[:-1])})
    try:
        value = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        value = _go_time(s)
        if value is None:
            raise InputError(f"{what} {text!r} is not a date (use YYYY-MM-DD, an ISO 8601 time, or e.g. 30d)") \
                from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _go_time(s: str) -> datetime | None:
    """Go's default ``time.Time.String()`` form (``2026-11-01 12:00:00.123 +0000 UTC``), as older Pulumi CLIs print."""
    m = re.match(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.\d+)? ([+-]\d{4})(?: \S+)?$", s)
    if not m:
        return None
    return datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M:%S %z")


def record_time(document: Mapping[str, Any], field_name: str = "started_at") -> datetime | None:
    value = document.get(field_name)
    if not value:
        return None
    return parse_time(value, what=field_name)


# ------------------------------------------------------------------------------------------------------------------
# Reconcile: pulumi stack history --json against the evidence
# ------------------------------------------------------------------------------------------------------------------

# Operations that change a stack. The pack runs (and emits a record) only on preview/update; `destroy`, `refresh` and
# `import` never run policy packs, so they are listed with --kinds but are not expected to have records by default.
DEFAULT_RECONCILED_KINDS = ("update",)


@dataclass(frozen=True)
class HistoryUpdate:
    """One entry of ``pulumi stack history --json`` (shape: pkg/cmd/pulumi/stack_history.go ``updateInfoJSON``)."""

    version: int | None
    kind: str
    start: datetime
    end: datetime | None
    result: str
    message: str = ""
    git_head: str | None = None
    resource_changes: Mapping[str, int] = field(default_factory=dict)

    def label(self) -> str:
        return f"version {self.version}" if self.version is not None else f"update at {self.start.isoformat()}"


def parse_stack_history(data: Any) -> list[HistoryUpdate]:
    """Parse ``pulumi stack history --json`` output (a JSON list of updateInfoJSON objects). Only the fields needed
    to match are read; ``config`` (which may hold decrypted secrets with --show-secrets) is ignored entirely."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InputError(f"stack history is not JSON ({exc})") from None
    if isinstance(data, Mapping) and isinstance(data.get("updates"), list):  # Pulumi Cloud REST API shape
        data = data["updates"]
    if not isinstance(data, list):
        raise InputError("stack history must be the JSON list printed by `pulumi stack history --json`")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            raise InputError(f"stack history entry #{i} is not an object")
        info = entry.get("info") if isinstance(entry.get("info"), Mapping) else entry  # REST API nests under info
        start_raw = info.get("startTime")
        if start_raw in (None, ""):
            raise InputError(f"stack history entry #{i} has no startTime")
        start = _history_time(start_raw, i)
        end_raw = info.get("endTime")
        env = info.get("environment") or {}
        version = info.get("version", entry.get("version"))
        out.append(HistoryUpdate(
            version=int(version) if isinstance(version, (int, float, str)) and str(version).isdigit() else None,
            kind=str(info.get("kind") or ""), start=start,
            end=_history_time(end_raw, i) if end_raw not in (None, "", 0) else None,
            result=str(info.get("result") or ""), message=str(info.get("message") or ""),
            git_head=env.get("git.head") if isinstance(env, Mapping) else None,
            resource_changes=dict(info.get("resourceChanges") or {})))
    return out


def _history_time(value: Any, index: int) -> datetime:
    if isinstance(value, (int, float)):  # the REST API uses unix seconds
        return datetime.fromtimestamp(value, timezone.utc)
    return parse_time(str(value), what=f"stack history entry #{index} time")


@dataclass(frozen=True)
class ReconcileResult:
    matched: list[tuple[HistoryUpdate, str]]  # (update, record_id)
    missing: list[HistoryUpdate]  # updates with no evidence record
    unmatched_records: list[str]  # update records with no history entry (e.g. history page too short)
    ignored: list[HistoryUpdate]  # history entries of kinds not reconciled

    @property
    def ok(self) -> bool:
        return not self.missing


def reconcile(history: Sequence[HistoryUpdate], records: Sequence[Mapping[str, Any]], *,
              kinds: Sequence[str] = DEFAULT_RECONCILED_KINDS, tolerance: timedelta = timedelta(minutes=5)
              ) -> ReconcileResult:
    """Match each history entry of ``kinds`` to at most one ``update`` record of the same stack.

    A record matches an update when its ``started_at`` lies in ``[start - tolerance, (end or start) + tolerance]``
    (the pack's AnalyzeStack runs inside the update; history times have one-second resolution) and, when both sides
    name a commit, the commits agree. Entries are matched one-to-one, closest start first, so two quick updates
    cannot both claim one record.
    """
    wanted = [h for h in history if h.kind in kinds]
    ignored = [h for h in history if h.kind not in kinds]
    candidates = []
    for doc in records:
        if doc.get("kind") != "update":
            continue
        t = record_time(doc)
        if t is not None:
            candidates.append((t, doc))
    pairs = []
    for hi, h in enumerate(wanted):
        lo, hi_t = h.start - tolerance, (h.end or h.start) + tolerance
        for ri, (t, doc) in enumerate(candidates):
            if not lo <= t <= hi_t:
                continue
            commit = (doc.get("artifact") or {}).get("git_commit") or (doc.get("ci") or {}).get("commit")
            if h.git_head and commit and not (commit.startswith(h.git_head) or h.git_head.startswith(commit)):
                continue
            pairs.append((abs((t - h.start).total_seconds()), hi, ri))
    pairs.sort()
    used_h, used_r, matched = set(), set(), {}
    for _, hi, ri in pairs:
        if hi in used_h or ri in used_r:
            continue
        used_h.add(hi)
        used_r.add(ri)
        matched[hi] = candidates[ri][1]["record_id"]
    window_lo = min((h.start for h in wanted), default=None)
    window_hi = max(((h.end or h.start) for h in wanted), default=None)
    unmatched = [doc["record_id"] for ri, (t, doc) in enumerate(candidates)
                 if ri not in used_r and window_lo is not None and window_lo - tolerance <= t <= window_hi + tolerance]
    return ReconcileResult(
        matched=[(h, matched[i]) for i, h in enumerate(wanted) if i in matched],
        missing=[h for i, h in enumerate(wanted) if i not in matched],
        unmatched_records=unmatched, ignored=ignored)


# ------------------------------------------------------------------------------------------------------------------
# Post-release verification: current state vs the last update record
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateComparison:
    matched: bool
    missing: list[str]  # in the record, absent from the state
    unexpected: list[str]  # in the state, absent from the record
    changed: list[str]  # same URN, different input digest
    state_digest: str
    compared: int

    def differences(self) -> list[str]:
        return ([f"missing from state: {u}" for u in self.missing]
                + [f"not in the update record: {u}" for u in self.unexpected]
                + [f"inputs differ: {u}" for u in self.changed])


def compare_state(record: Mapping[str, Any], state: Mapping[str, tuple[str, str]]) -> StateComparison:
    """Compare an update record's resources with the state's ``urn -> (type, digest)``.

    Resources the record lists with op ``delete`` must be absent. A record resource without a digest (e.g. an
    unknown during preview) is compared by presence only.
    """
    recorded: dict[str, str | None] = {}
    deleted: set[str] = set()
    for r in record.get("resources") or []:
        if r.get("op") == "delete":
            deleted.add(r["urn"])
        else:
            recorded[r["urn"]] = r.get("inputs_digest")
    missing = sorted(u for u in recorded if u not in state)
    unexpected = sorted(u for u in state if u not in recorded)
    unexpected += sorted(u for u in deleted if u in state and u not in unexpected)
    unexpected.sort()
    changed = sorted(u for u, d in recorded.items() if u in state and d and state[u][1] != d)
    canon = json.dumps(sorted((u, t, d) for u, (t, d) in state.items()), separators=(",", ":"))
    return StateComparison(matched=not (missing or unexpected or changed), missing=missing, unexpected=unexpected,
                           changed=changed, state_digest=hashlib.sha256(canon.encode()).hexdigest(),
                           compared=len(recorded))


def last_update_record(documents: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest update record that changed the stack (outcome succeeded or not recorded); documents newest first.
    A failed or blocked update is skipped: the state should match the last update that completed."""
    for doc in documents:
        if doc.get("kind") == "update" and doc.get("outcome") in (None, "succeeded"):
            return doc
    return None


# ------------------------------------------------------------------------------------------------------------------
# Promotion: did this artifact reach a lower tier successfully first?
# ------------------------------------------------------------------------------------------------------------------

TIER_RANK = {"development": 1, "staging": 2, "production": 3}
PROMOTION_LOOKBACK = timedelta(days=90)
PROMOTION_LIMIT = 5000


@dataclass(frozen=True)
class PriorUpdate:
    """An update record of the same project, reduced to what the promotion control needs."""

    record_id: str
    stack: str  # org/project/stack
    tier: str
    outcome: str | None
    git_commit: str | None
    source_digest: str | None
    mandatory_violations: int
    started_at: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome in (None, "succeeded") and self.mandatory_violations == 0


@dataclass(frozen=True)
class PromotionFacts:
    """What ``PS019-EVID-002`` needs, gathered once per run by the pack's edge (:func:`load_promotion_facts`)."""

    git_commit: str | None
    source_digest: str | None
    prior_updates: tuple[PriorUpdate, ...] = ()
    error: str | None = None


def prior_update(document: Mapping[str, Any]) -> PriorUpdate:
    artifact = document.get("artifact") or {}
    mandatory = sum(1 for r in document.get("policy_results") or []
                    if r.get("level") == "mandatory" and not r.get("waived_by"))
    return PriorUpdate(record_id=document["record_id"],
                       stack=f"{document.get('organization')}/{document.get('project')}/{document.get('stack')}",
                       tier=document.get("environment") or "unknown", outcome=document.get("outcome"),
                       git_commit=artifact.get("git_commit"), source_digest=artifact.get("source_digest"),
                       mandatory_violations=mandatory, started_at=document.get("started_at"))


def load_promotion_facts(store: Any, organization: str, project: str, artifact: Any, *,
                         now: datetime | None = None, lookback: timedelta = PROMOTION_LOOKBACK,
                         public_keys: Mapping[str, Any] | None = None,
                         kinds: tuple[str, ...] = ("update",)) -> PromotionFacts:
    """The edge for the promotion control: update records of ``organization/project`` in the last ``lookback``
    whose artifact matches ``artifact`` (a commit string, or an ``Artifact``/mapping with ``git_commit`` and
    ``source_digest``). One indexed query (kind + time); the project and artifact filters run here.

    With ``public_keys``, a record whose signature does not verify is not counted: a forged "it passed staging"
    record must not satisfy the promotion control.

    ``kinds``: the record kinds that count as updates. A deployment counts only deployments (``update``); an offline
    rehearsal (``ps019 up``) also counts earlier offline rehearsals (``offline_update``), never the other way round."""
    commit, digest = _artifact_ids(artifact)
    now = now or datetime.now(timezone.utc)
    priors = []
    if not (commit or digest):
        kinds = ()
    for kind in kinds:
        for stored in store.query(kind=kind, since=now - lookback, limit=PROMOTION_LIMIT):
            doc = stored.document
            if doc.get("project") != project or (organization and doc.get("organization") != organization):
                continue
            p = prior_update(doc)
            if (commit and p.git_commit == commit) or (digest and p.source_digest == digest):
                if public_keys is not None and verify_record(stored, public_keys) is not None:
                    continue
                priors.append(p)
    return PromotionFacts(git_commit=commit, source_digest=digest, prior_updates=tuple(priors))


def _artifact_ids(artifact: Any) -> tuple[str | None, str | None]:
    if artifact is None or isinstance(artifact, str):
        return artifact or None, None
    if isinstance(artifact, Mapping):
        return artifact.get("git_commit"), artifact.get("source_digest")
    return getattr(artifact, "git_commit", None), getattr(artifact, "source_digest", None)
