"""Programme metrics over the evidence (release-gates standard, "Metrics and Continuous Improvement"): gate bypasses,
emergency ratio, evidence completeness, break-glass review latency, overdue reviews, exceptions in force and
post-release verification results. :func:`compute_metrics` is pure over record documents; :func:`load_documents`
does the store reads; ``render_*`` turn a :class:`Metrics` into a rich table, JSON or one static HTML file.

Definitions (also in docs/auditor-guide.md):

* period: records whose ``started_at`` is in ``[since, until)``;
* production update: a record of kind ``update`` with environment ``production``;
* emergency ratio: production updates with change class ``emergency`` / production updates;
* gate bypasses: break-glass grants opened in the period (``break_glass_open`` records), deployments that used a
  verified break-glass grant, and blocked attempts (``blocked`` records);
* evidence completeness: production updates for which ``ps019.evidence.audit.missing_fields`` is empty / production
  updates;
* review latency: per break-glass grant closed in the period, time from its close to its first review (reviews may
  come after ``until``); p50/p90 are nearest-rank percentiles (``audit.percentile``), in hours;
* overdue review: a grant closed in the period with no review, whose close is more than ``review_sla`` before
  ``as_of``; an unclosed grant is one opened in the period, expired before ``as_of`` and never closed;
* exceptions in force: exception records approved at or before ``as_of`` and expiring after it;
* post-release defects: verification records in the period whose state did not match the update record (drift);
* stack facts from environment: production updates whose ``recording.stack_facts`` says a field (stack, dry-run,
  config...) came from the ``PULUMI_*`` variables (an engine without ConfigureStack), which a deployer can set;
* offline runs: records of kinds ``offline_preview``/``offline_update``/``offline_blocked`` in the period (passes
  driven by ``ps019 analyze``/``ps019 up``, not by the Pulumi engine: nothing was deployed). They are never counted
  in any metric above; ``offline_runs`` says how many there were. ``include_offline=True`` (``ps019 report
  --include-offline``, for rehearsals and the demo) counts them as the passes they rehearse, and the report says so
  on every rendering.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from ps019.errors import printable
from ps019.evidence.audit import REQUIRED_FIELDS, is_production_update, missing_fields, parse_time, percentile
from ps019.evidence.record import OFFLINE_KIND_PREFIX

DEFAULT_REVIEW_SLA = timedelta(hours=72)  # the break-glass settings' default review_sla_hours


@dataclass
class Metrics:
    since: str | None
    until: str | None
    as_of: str
    review_sla_hours: float
    records: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    production_updates: int = 0
    emergency_updates: int = 0
    emergency_ratio: float | None = None
    break_glass_grants_opened: int = 0
    break_glass_deployments: int = 0
    blocked_attempts: int = 0
    gate_bypasses: int = 0
    complete_updates: int = 0
    evidence_completeness: float | None = None
    missing_field_counts: dict[str, int] = field(default_factory=dict)
    incomplete_records: list[dict[str, Any]] = field(default_factory=list)
    review_latency_hours: list[dict[str, Any]] = field(default_factory=list)
    review_latency_p50_hours: float | None = None
    review_latency_p90_hours: float | None = None
    overdue_reviews: list[dict[str, Any]] = field(default_factory=list)
    unclosed_grants: list[dict[str, Any]] = field(default_factory=list)
    exceptions_in_force: list[dict[str, Any]] = field(default_factory=list)
    verifications: int = 0
    post_release_defects: list[dict[str, Any]] = field(default_factory=list)
    offline_runs: int = 0  # offline_* records in the period: not deployments
    offline_with_placeholders: int = 0  # of those, runs that judged offline placeholder values
    offline_included: bool = False  # --include-offline: offline runs counted as the passes they rehearse
    # production updates whose stack facts (stack, dry-run, config...) came from PULUMI_* variables, not ConfigureStack
    stack_facts_from_environment: list[dict[str, Any]] = field(default_factory=list)
    series_unit: str = "day"
    series: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- loading ------------------------------------------------------------------------------------------------------


def load_documents(store: Any, since: datetime | None, until: datetime | None, stack: str | None = None
                   ) -> list[dict[str, Any]]:
    """The records the metrics need: everything in the period, plus break-glass reviews after it (latency) and every
    exception (one approved before the period can still be in force). Uses only indexed filters."""
    seen: dict[str, dict[str, Any]] = {}
    batches = [store.query(since=since, until=until, **({"stack": stack} if stack else {})),
               store.query(kind="break_glass_review", since=since),
               store.query(kind="exception", until=until)]
    for batch in batches:
        for rec in batch:
            seen.setdefault(rec.record_id, rec.document)
    return list(seen.values())


# --- computing ----------------------------------------------------------------------------------------------------


def _t(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _in(t: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    return t is not None and (since is None or t >= since) and (until is None or t < until)


def compute_metrics(documents: Iterable[Mapping[str, Any]], *, since: datetime | None, until: datetime | None,
                    now: datetime | None = None, review_sla: timedelta = DEFAULT_REVIEW_SLA,
                    include_offline: bool = False) -> Metrics:
    now = now or datetime.now(timezone.utc)
    as_of = min(now, until) if until else now
    docs = list(documents)
    m = Metrics(since=_iso(since), until=_iso(until), as_of=_iso(as_of),
                review_sla_hours=review_sla.total_seconds() / 3600, offline_included=include_offline)
    offline = [d for d in docs if str(d.get("kind", "")).startswith(OFFLINE_KIND_PREFIX)
               and _in(_t(d.get("started_at")), since, until)]
    m.offline_runs = len(offline)
    m.offline_with_placeholders = sum(1 for d in offline if (d.get("offline") or {}).get("placeholders"))
    if include_offline:  # a rehearsal: each offline run counts as the pass it rehearsed
        rehearsed = {id(d) for d in offline}
        docs = [{**d, "kind": d["kind"][len(OFFLINE_KIND_PREFIX):]} if id(d) in rehearsed else d for d in docs]
    period = [d for d in docs if _in(_t(d.get("started_at")), since, until)]
    m.records = len(period)
    for d in period:
        m.by_kind[d.get("kind", "?")] = m.by_kind.get(d.get("kind", "?"), 0) + 1

    prod = [d for d in period if is_production_update(d)]
    m.production_updates = len(prod)
    m.emergency_updates = sum(1 for d in prod if d.get("change_class") == "emergency")
    m.emergency_ratio = m.emergency_updates / len(prod) if prod else None
    m.blocked_attempts = m.by_kind.get("blocked", 0)
    m.break_glass_grants_opened = m.by_kind.get("break_glass_open", 0)
    # Deployments, not passes: `pulumi up` leaves a preview and an update record for one change.
    m.break_glass_deployments = sum(1 for d in period if d.get("kind") in ("update", "blocked")
                                    and (d.get("break_glass") or {}).get("verified"))
    m.gate_bypasses = m.break_glass_grants_opened + m.break_glass_deployments + m.blocked_attempts

    m.missing_field_counts = {f.name: 0 for f in REQUIRED_FIELDS}
    for d in prod:
        missing = missing_fields(d)
        for name in missing:
            m.missing_field_counts[name] += 1
        if missing:
            m.incomplete_records.append({"record_id": d["record_id"], "stack": _stack(d),
                                         "started_at": d.get("started_at"), "missing": missing})
        else:
            m.complete_updates += 1
        sources = (d.get("recording") or {}).get("stack_facts") or {}
        from_env = sorted(k for k, v in sources.items() if v == "environment") if isinstance(sources, dict) else []
        if from_env:
            m.stack_facts_from_environment.append({"record_id": d["record_id"], "stack": _stack(d),
                                                   "started_at": d.get("started_at"), "fields": from_env})
    m.missing_field_counts = {k: v for k, v in m.missing_field_counts.items() if v}
    m.evidence_completeness = m.complete_updates / len(prod) if prod else None

    _review_metrics(m, docs, since, until, as_of, review_sla)

    for d in docs:
        if d.get("kind") != "exception":
            continue
        p = d.get("payload") or {}
        approved, expires = _t(d.get("started_at")), _t(p.get("expires_at"))
        if approved and approved <= as_of and expires and expires > as_of:
            m.exceptions_in_force.append({"exception_id": p.get("exception_id"), "control_id": p.get("control_id"),
                                          "resource": p.get("resource"), "expires_at": _iso(expires),
                                          "record_id": d["record_id"]})
    m.exceptions_in_force.sort(key=lambda e: (e["expires_at"] or "", e["exception_id"] or ""))

    for d in period:
        if d.get("kind") != "verification":
            continue
        m.verifications += 1
        p = d.get("payload") or {}
        if p.get("matched") is False:
            m.post_release_defects.append({
                "record_id": d["record_id"], "stack": _stack(d), "started_at": d.get("started_at"),
                "against_record_id": p.get("against_record_id"), "missing": len(p.get("missing") or []),
                "unexpected": len(p.get("unexpected") or []), "changed": len(p.get("changed") or [])})

    _series(m, period, since, until)
    return m


def _stack(d: Mapping[str, Any]) -> str:
    return f"{d.get('organization')}/{d.get('project')}/{d.get('stack')}"


def _review_metrics(m: Metrics, docs: list[Mapping[str, Any]], since: datetime | None, until: datetime | None,
                    as_of: datetime, sla: timedelta) -> None:
    opens: dict[str, Mapping[str, Any]] = {}
    closes: dict[str, datetime] = {}
    reviews: dict[str, datetime] = {}
    for d in docs:
        p = d.get("payload") or {}
        gid = p.get("grant_id")
        if not gid:
            continue
        kind = d.get("kind")
        if kind == "break_glass_open":
            opens[gid] = d
        elif kind == "break_glass_close":
            t = _t(p.get("closed_at")) or _t(d.get("started_at"))
            if t and (gid not in closes or t < closes[gid]):
                closes[gid] = t
        elif kind == "break_glass_review":
            t = _t(p.get("reviewed_at")) or _t(d.get("started_at"))
            if t and (gid not in reviews or t < reviews[gid]):
                reviews[gid] = t
    hours = []
    for gid, closed in sorted(closes.items(), key=lambda kv: kv[1]):
        if not _in(closed, since, until):
            continue
        reviewed = reviews.get(gid)
        if reviewed is not None and reviewed >= closed:
            h = (reviewed - closed).total_seconds() / 3600
            hours.append(h)
            m.review_latency_hours.append({"grant_id": gid, "closed_at": _iso(closed), "reviewed_at": _iso(reviewed),
                                           "hours": round(h, 3), "late": reviewed - closed > sla})
        elif reviewed is None and as_of - closed > sla:
            m.overdue_reviews.append({"grant_id": gid, "closed_at": _iso(closed), "due_at": _iso(closed + sla),
                                      "overdue_hours": round((as_of - closed - sla).total_seconds() / 3600, 1)})
    m.review_latency_p50_hours = percentile(hours, 50)
    m.review_latency_p90_hours = percentile(hours, 90)
    for gid, d in sorted(opens.items()):
        opened = _t(d.get("started_at"))
        expires = _t((d.get("payload") or {}).get("expires_at"))
        if _in(opened, since, until) and gid not in closes and expires and expires < as_of:
            m.unclosed_grants.append({"grant_id": gid, "opened_at": _iso(opened), "expired_at": _iso(expires),
                                      "incident": (d.get("payload") or {}).get("incident")})


def _series(m: Metrics, period: list[Mapping[str, Any]], since: datetime | None, until: datetime | None) -> None:
    times = [t for t in (_t(d.get("started_at")) for d in period) if t]
    if not times:
        return
    lo, hi = since or min(times), until or max(times)
    span = (hi - lo).days
    m.series_unit = "day" if span <= 45 else "week" if span <= 400 else "month"
    buckets: dict[str, dict[str, Any]] = {}
    for d in period:
        t = _t(d.get("started_at"))
        kind = d.get("kind")
        if t is None or not (kind == "blocked" or is_production_update(d)):
            continue
        key = _bucket(t, m.series_unit)
        b = buckets.setdefault(key, {"bucket": key, "normal": 0, "emergency": 0, "blocked": 0})
        if kind == "blocked":
            b["blocked"] += 1
        elif d.get("change_class") == "emergency":
            b["emergency"] += 1
        else:
            b["normal"] += 1
    m.series = [buckets[k] for k in sorted(buckets)]


def _bucket(t: datetime, unit: str) -> str:
    if unit == "day":
        return t.strftime("%Y-%m-%d")
    if unit == "week":
        y, w, _ = t.isocalendar()
        return f"{y}-W{w:02d}"
    return t.strftime("%Y-%m")


# --- rendering ----------------------------------------------------------------------------------------------------


def render_json(m: Metrics) -> str:
    return json.dumps(m.to_dict(), indent=2, sort_keys=True)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _hours(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} h"


def summary_rows(m: Metrics) -> list[tuple[str, str, str]]:
    """(metric, value, detail) rows shared by the table and the HTML report."""
    return _offline_rows(m) + [
        ("Production updates", str(m.production_updates), f"{m.records} records in the period"),
        ("Emergency ratio", _pct(m.emergency_ratio), f"{m.emergency_updates} emergency of {m.production_updates}"),
        ("Stack facts from environment", str(len(m.stack_facts_from_environment)),
         "production updates whose stack, dry-run or config came from PULUMI_* variables (an engine without "
         "ConfigureStack), which the deployer can set; records say so in recording.stack_facts"),
        ("Gate bypasses", str(m.gate_bypasses),
         f"{m.break_glass_grants_opened} break-glass grants opened, {m.break_glass_deployments} deployments under "
         f"break-glass, {m.blocked_attempts} blocked attempts"),
        ("Evidence completeness", _pct(m.evidence_completeness),
         f"{m.complete_updates} of {m.production_updates} production updates have every required field"),
        ("Review latency p50 / p90", f"{_hours(m.review_latency_p50_hours)} / {_hours(m.review_latency_p90_hours)}",
         f"{len(m.review_latency_hours)} reviewed grants; SLA {m.review_sla_hours:g} h"),
        ("Overdue reviews", str(len(m.overdue_reviews)), f"{len(m.unclosed_grants)} expired grants never closed"),
        ("Exceptions in force", str(len(m.exceptions_in_force)), f"as of {m.as_of}"),
        ("Post-release defects", str(len(m.post_release_defects)), f"drift in {len(m.post_release_defects)} of "
                                                                   f"{m.verifications} verifications"),
    ]


def _offline_rows(m: Metrics) -> list[tuple[str, str, str]]:
    if m.offline_included:
        return [("INCLUDES OFFLINE RUNS", str(m.offline_runs),
                 "--include-offline: these counts include passes driven by `ps019 analyze`/`ps019 up` (offline, "
                 "nothing deployed) as if they were deployments; never present this as a record of production")]
    if m.offline_runs:
        return [("Offline runs (not deployments)", str(m.offline_runs),
                 f"`ps019 analyze`/`ps019 up` passes (kinds offline_*), {m.offline_with_placeholders} judged offline "
                 "placeholder values; not counted in any metric below")]
    return []


def render_table(m: Metrics, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    def cell(value: Any) -> str:  # record text: markup escaped, control characters shown (ps019.errors.printable)
        return escape(printable(value))

    table = Table(title=f"PS-019 change metrics {m.since or 'start'} .. {m.until or m.as_of}")
    table.add_column("Metric", style="bold")
    table.add_column("Value", justify="right")
    table.add_column("Detail")
    for row in summary_rows(m):
        table.add_row(*(cell(v) for v in row))
    console.print(table)
    if m.missing_field_counts:
        t = Table(title="Missing required fields (production updates)")
        t.add_column("Field")
        t.add_column("Updates", justify="right")
        for k, v in sorted(m.missing_field_counts.items(), key=lambda kv: -kv[1]):
            t.add_row(cell(k), str(v))
        console.print(t)
    for title, rows, cols in (("Overdue break-glass reviews", m.overdue_reviews, ("grant_id", "closed_at", "due_at")),
                              ("Exceptions in force", m.exceptions_in_force,
                               ("exception_id", "control_id", "resource", "expires_at")),
                              ("Post-release drift", m.post_release_defects,
                               ("stack", "started_at", "missing", "unexpected", "changed"))):
        if rows:
            t = Table(title=title)
            for c in cols:
                t.add_column(c)
            for r in rows:
                t.add_row(*(cell(r.get(c, "")) for c in cols))
            console.print(t)


# --- HTML -----------------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2933;padding:0 1rem;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d9e2ec;
padding-bottom:.3rem}.sub{color:#52606d;margin-top:0}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #d9e2ec;border-radius:8px;padding:.7rem .9rem;background:#f8fafc}
.card .v{font-size:1.6rem;font-weight:600}.card .k{font-size:.85rem;color:#52606d}.card .d{font-size:.78rem;color:#7b8794}
.card.bad{border-color:#e12d39;background:#fff5f5}.card.ok{border-color:#3ebd93;background:#f0fcf9}
table{border-collapse:collapse;width:100%;font-size:.88rem}th,td{text-align:left;padding:.35rem .5rem;
border-bottom:1px solid #e4e7eb;vertical-align:top}th{background:#f0f4f8}td.n{text-align:right}
code{font-size:.82rem}.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}
.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px;border-radius:2px}
footer{margin-top:2.5rem;font-size:.8rem;color:#7b8794}
@media print{.cards{grid-template-columns:repeat(4,1fr)}body{margin:0}}
"""

_COLORS = {"normal": "#2680c2", "emergency": "#e12d39", "blocked": "#f0b429"}


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _bar_chart(series: list[dict[str, Any]], unit: str) -> str:
    if not series:
        return "<p>No updates or blocked attempts in the period.</p>"
    w, h, left, bottom, top = 1000, 260, 40, 50, 10
    n = len(series)
    maxv = max(sum(b[k] for k in _COLORS) for b in series) or 1
    slot = (w - left - 10) / n
    bw = max(2.0, slot * 0.7)
    parts = [f'<svg role="img" aria-label="Updates per {unit}" viewBox="0 0 {w} {h}" width="100%" '
             f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="sans-serif">']
    ticks = sorted({0, maxv, (maxv + 1) // 2})
    plot_h = h - bottom - top
    for t in ticks:
        y = top + plot_h - plot_h * t / maxv
        parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#52606d">{t}</text>')
    label_every = max(1, n // 20)
    for i, b in enumerate(series):
        x = left + i * slot + (slot - bw) / 2
        y = top + plot_h
        for k, color in _COLORS.items():
            v = b[k]
            if not v:
                continue
            bh = plot_h * v / maxv
            y -= bh
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{color}">'
                         f'<title>{_e(b["bucket"])}: {v} {k}</title></rect>')
        if i % label_every == 0:
            lx = x + bw / 2
            parts.append(f'<text x="{lx:.1f}" y="{h - bottom + 14}" text-anchor="end" fill="#52606d" '
                         f'transform="rotate(-35 {lx:.1f} {h - bottom + 14})">{_e(b["bucket"])}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i class="sw" style="background:{c}"></i>{k}</span>' for k, c in _COLORS.items())
    return f'<div class="legend">{legend}</div>' + "".join(parts)


def _hbar_chart(items: list[tuple[str, float]], total: float, unit_label: str, color: str = "#e12d39",
                marker: float | None = None, marker_label: str = "") -> str:
    if not items:
        return ""
    row, left, w = 24, 230, 1000
    h = row * len(items) + 24
    maxv = max([v for _, v in items] + [marker or 0, total or 0]) or 1
    scale = (w - left - 80) / maxv
    parts = [f'<svg viewBox="0 0 {w} {h}" width="100%" xmlns="http://www.w3.org/2000/svg" font-size="12" '
             f'font-family="sans-serif" role="img" aria-label="{_e(unit_label)}">']
    for i, (label, v) in enumerate(items):
        y = 6 + i * row
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" fill="#1f2933">{_e(label)}</text>'
                     f'<rect x="{left}" y="{y + 2}" width="{max(1.0, v * scale):.1f}" height="{row - 8}" '
                     f'fill="{color}"><title>{_e(label)}: {v:g} {unit_label}</title></rect>'
                     f'<text x="{left + v * scale + 6:.1f}" y="{y + 14}" fill="#52606d">{v:g}</text>')
    if marker is not None:
        x = left + marker * scale
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{h - 14}" stroke="#52606d" stroke-dasharray="4 3"/>'
                     f'<text x="{x:.1f}" y="{h - 2}" text-anchor="middle" fill="#52606d">{_e(marker_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[dict[str, Any]], cols: tuple[str, ...], empty: str, limit: int = 200) -> str:
    if not rows:
        return f"<p>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in cols)
    body = []
    for r in rows[:limit]:
        cells = []
        for c in cols:
            v = r.get(c)
            if v is None:
                v = "–"
            elif isinstance(v, list):
                v = ", ".join(map(str, v))
            cls = ' class="n"' if isinstance(r.get(c), (int, float)) else ""
            cells.append(f"<td{cls}>{_e(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>… and {len(rows) - limit} more (see --format json).</p>" if len(rows) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def render_html(m: Metrics, *, title: str = "PS-019 change-management metrics", store: str = "") -> str:
    """One self-contained HTML file: inline CSS and SVG, no scripts, no external resources (works offline)."""
    def card(key: str, value: str, detail: str, state: str = "") -> str:
        return (f'<div class="card {state}"><div class="k">{_e(key)}</div><div class="v">{_e(value)}</div>'
                f'<div class="d">{_e(detail)}</div></div>')

    comp_state = "" if m.evidence_completeness is None else ("ok" if m.evidence_completeness >= 0.999 else "bad")
    rows = summary_rows(m)
    states = ["", "bad" if (m.emergency_ratio or 0) > 0.1 else "", "bad" if m.gate_bypasses else "ok", comp_state,
              "bad" if any(r["late"] for r in m.review_latency_hours) else "", "bad" if m.overdue_reviews else "ok",
              "", "bad" if m.post_release_defects else "ok"]
    cards = "".join(card(k, v, d, s) for (k, v, d), s in zip(rows, states))
    missing = sorted(m.missing_field_counts.items(), key=lambda kv: -kv[1])
    latency = [(r["grant_id"], r["hours"]) for r in m.review_latency_hours]
    period = f"{m.since or 'beginning of the record'} to {m.until or m.as_of}"
    required = "".join(f"<tr><td><code>{_e(f.name)}</code></td><td>{_e(f.clause)}</td></tr>" for f in REQUIRED_FIELDS)
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head><body>
<h1>{_e(title)}</h1>
<p class="sub">Period {_e(period)} · as of {_e(m.as_of)}{' · store ' + _e(store) if store else ''}</p>
<div class="cards">{cards}</div>
<h2>Production updates and blocked attempts per {_e(m.series_unit)}</h2>
{_bar_chart(m.series, m.series_unit)}
<h2>Evidence completeness: missing required fields</h2>
<p>{_e(m.complete_updates)} of {_e(m.production_updates)} production updates carry every required field
({_e(_pct(m.evidence_completeness))}).</p>
{_hbar_chart(missing, m.production_updates, "updates") or "<p>No production update lacks a required field.</p>"}
{_table(m.incomplete_records, ("record_id", "stack", "started_at", "missing"), "")}
<h2>Break-glass review latency (close → review)</h2>
<p>p50 {_e(_hours(m.review_latency_p50_hours))}, p90 {_e(_hours(m.review_latency_p90_hours))}
(nearest-rank), review SLA {_e(f"{m.review_sla_hours:g}")} h (dashed line).</p>
{_hbar_chart(latency, 0, "hours", "#2680c2", m.review_sla_hours, "SLA") or "<p>No reviewed grants.</p>"}
<h2>Overdue reviews</h2>
{_table(m.overdue_reviews, ("grant_id", "closed_at", "due_at", "overdue_hours"), "None.")}
<h3>Expired grants never closed</h3>
{_table(m.unclosed_grants, ("grant_id", "opened_at", "expired_at", "incident"), "None.")}
<h2>Exceptions in force</h2>
{_table(m.exceptions_in_force, ("exception_id", "control_id", "resource", "expires_at"), "None.")}
<h2>Post-release verification</h2>
<p>{_e(m.verifications)} verifications in the period; {_e(len(m.post_release_defects))} found drift.</p>
{_table(m.post_release_defects, ("stack", "started_at", "against_record_id", "missing", "unexpected", "changed"),
        "No drift found.")}
<h2>Definitions</h2>
<p>Required fields for a complete production update record:</p>
<table><thead><tr><th>Field</th><th>Why (PS-019 / release gates)</th></tr></thead><tbody>{required}</tbody></table>
<footer>Generated by <code>ps019 report</code>. Counts come from signed, hash-chained evidence records; run
<code>ps019 evidence verify</code> to check their integrity. Records by kind: {_e(", ".join(f"{k} {v}" for k, v in
sorted(m.by_kind.items())) or "none")}.</footer>
</body></html>
"""
    return body
