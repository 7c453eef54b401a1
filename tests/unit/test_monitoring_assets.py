"""The alert rules and the dashboards reference only metrics the server exports (no drift),
and the metrics module exports what the specs declare."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from rankops.monitoring import dashboards, metrics

ASSETS = Path(metrics.__file__).parent / "assets"
NAME = re.compile(r"\brankops_[a-z0-9_]+")


def referenced(text: str) -> set[str]:
    return set(NAME.findall(text))


def test_rules_are_well_formed_and_use_exported_metrics() -> None:
    text = (ASSETS / "prometheus-rules.yml").read_text()
    doc = yaml.safe_load(text)
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert all(("alert" in r) != ("record" in r) and r["expr"] for r in rules)
    assert sum("alert" in r for r in rules) >= 8
    exprs = " ".join(r["expr"] for r in rules)
    unknown = referenced(exprs) - metrics.exposed_names()
    assert not unknown, f"rules reference metrics the server does not export: {unknown}"
    used = {
        n.removesuffix(s)
        for n in referenced(exprs)
        for s in ("_bucket", "_count", "_sum", "_total", "")
        if n.endswith(s)
    }
    assert {"rankops_request_seconds", "rankops_fallback", "rankops_store_errors"} <= used


def dashboard_queries() -> list[str]:
    return [expr for specs in dashboards.DASHBOARDS.values() for spec in specs for expr, _ in spec.queries]


def test_dashboards_are_generated_and_current() -> None:
    for name in dashboards.DASHBOARDS:
        assert dashboards.path(name).read_text() == dashboards.render(name), (
            f"{dashboards.path(name).name} is stale: run python -m rankops.monitoring.dashboards"
        )
        board = json.loads(dashboards.path(name).read_text())
        assert board["uid"] == f"rankops-{name}" and len(board["panels"]) == len(dashboards.DASHBOARDS[name])


def test_dashboard_queries_use_exported_metrics_and_labels_and_cover_every_metric() -> None:
    specs = {spec.name: spec for spec in metrics.SPECS}
    for expr in dashboard_queries():
        names = referenced(expr)
        unknown = names - metrics.exposed_names()
        assert not unknown, f"a dashboard references metrics nobody exports: {unknown}"
        bases = {s for s in specs if any(n.startswith(s.removesuffix("_total")) for n in names)}
        labels = {"le"} | {label for base in bases for label in specs[base].labels}
        used = set(re.findall(r"(\w+)\s*[!=]~?\s*\"", expr))
        used |= {w.strip() for group in re.findall(r"by \(([^)]*)\)", expr) for w in group.split(",")}
        assert used <= labels, f"{expr}: labels {used - labels} are not exported"
    shown = {s for s in specs if any(s.removesuffix("_total") in q for q in dashboard_queries())}
    assert shown == set(specs), f"metrics without a panel: {set(specs) - shown}"


def test_exposition_matches_the_specs() -> None:
    m = metrics.ServingMetrics()
    m.request_seconds.labels("champion", "ok").observe(0.002)
    m.fallback.labels("champion", "rule").inc()
    m.store_errors.labels("redis", "error").inc()
    m.feature_fetch_seconds.labels("redis").observe(0.0003)
    m.score.labels("champion").observe(0.5)
    m.shadow.labels("scored").inc()
    m.shadow_rank_correlation.observe(0.9)
    m.release_reloads.labels("ok").inc()
    m.model_version.labels("champion").set(3)
    m.canary_share.set(0.1)
    m.candidates.inc(100)
    m.candidates_missing.inc(2)
    m.feedback.labels("dropped").inc()
    m.stream_defaults.labels("item_ctr_1h", "missing_or_stale").inc()
    body, content_type = m.exposition()
    exported = {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines() if not line.startswith("#")}
    assert exported == metrics.exposed_names("server")
    assert content_type.startswith("text/plain")
    assert metrics.ServingMetrics().registry is not m.registry, "two servers never share counters"


def test_job_gauges_reach_the_server_exposition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rankops.monitoring.drift_report import prometheus_text

    report = {"hourly": [{"psi": {"price": 0.4}}], "daily": [{"psi": {"price": 0.1}}]}
    folder = metrics.job_metrics_dir(tmp_path)
    m = metrics.ServingMetrics(job_metrics_dir=folder)
    assert b"rankops_feature_drift_psi" not in m.exposition()[0]
    metrics.write_job_metrics(folder, "drift", prometheus_text(report))
    body = m.exposition()[0].decode()
    assert 'rankops_feature_drift_psi{feature="price",window="hour"} 0.4' in body
    lines = (folder / "drift.prom").read_text().splitlines()
    jobs = {line.split("{")[0] for line in lines if not line.startswith("#")}
    assert jobs <= metrics.exposed_names("jobs")
