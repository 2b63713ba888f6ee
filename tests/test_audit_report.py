"""`ps019 report` numbers on a known population, percentile and completeness definitions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.test_audit_support import NOW, PERIOD, SECRET, seed


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    from ps019.evidence import Signer, open_store
    from ps019.evidence.report import compute_metrics, load_documents

    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'ev.db'}"
    with open_store(url) as store:
        seed(store, Signer.generate())
        docs = load_documents(store, *PERIOD)
    return compute_metrics(docs, since=PERIOD[0], until=PERIOD[1], now=NOW)


def test_counts_and_ratios(metrics):
    m = metrics
    assert m.records == 35 and m.production_updates == 10
    assert m.emergency_updates == 2 and m.emergency_ratio == pytest.approx(0.2)
    assert (m.break_glass_grants_opened, m.break_glass_deployments, m.blocked_attempts) == (5, 2, 3)
    assert m.gate_bypasses == 10


def test_evidence_completeness(metrics):
    m = metrics
    assert m.complete_updates == 7 and m.evidence_completeness == pytest.approx(0.7)
    assert m.missing_field_counts == {"rollback_plan": 1, "actor.verified": 1, "approval.verified": 1}
    assert sorted(r["started_at"][:10] for r in m.incomplete_records) == ["2026-11-02", "2026-11-03", "2026-11-05"]


def test_review_latency_percentiles_and_overdue(metrics):
    m = metrics
    assert [r["hours"] for r in m.review_latency_hours] == [2.0, 10.0, 30.0]
    assert (m.review_latency_p50_hours, m.review_latency_p90_hours) == (10.0, 30.0)
    assert [r["grant_id"] for r in m.overdue_reviews] == ["G4"]
    assert [r["grant_id"] for r in m.unclosed_grants] == ["G5"]


def test_exceptions_in_force_and_post_release_defects(metrics):
    assert [e["exception_id"] for e in metrics.exceptions_in_force] == ["E1"]
    assert metrics.verifications == 2
    assert [(d["missing"], d["changed"]) for d in metrics.post_release_defects] == [(1, 1)]


def test_series_counts_production_updates_and_blocked(metrics):
    total = {k: sum(b[k] for b in metrics.series) for k in ("normal", "emergency", "blocked")}
    assert total == {"normal": 8, "emergency": 2, "blocked": 3}
    assert metrics.series_unit == "day"


def test_review_sla_changes_overdue_and_late():
    from ps019.evidence.report import compute_metrics
    from tests.test_audit_support import population

    docs = [r.document() for r in population()]
    m = compute_metrics(docs, since=PERIOD[0], until=PERIOD[1], now=NOW, review_sla=timedelta(hours=24))
    assert [r["grant_id"] for r in m.review_latency_hours if r["late"]] == ["G3"]


def test_percentile_is_nearest_rank():
    from ps019.evidence.audit import percentile

    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 90) == 4
    assert percentile(list(range(1, 11)), 90) == 9 and percentile(list(range(1, 11)), 50) == 5


def test_html_report_is_self_contained_and_has_no_secret(metrics):
    from ps019.evidence.report import render_html

    page = render_html(metrics)
    assert SECRET not in page
    assert page.count("<svg") == 3 and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_empty_period_renders():
    from ps019.evidence.report import compute_metrics, render_html, render_json

    m = compute_metrics([], since=PERIOD[0], until=PERIOD[1], now=NOW)
    assert m.evidence_completeness is None and m.review_latency_p50_hours is None
    assert "n/a" in render_html(m) and render_json(m)
