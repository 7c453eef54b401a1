"""The alert rules and the dashboard reference only metrics the server exports (no drift),
and the metrics module exports what the specs declare."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from rankops.monitoring import metrics

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


def test_dashboard_uses_exported_metrics_and_covers_every_metric() -> None:
    dashboard = json.loads((ASSETS / "grafana-serving.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    unknown = referenced(exprs) - metrics.exposed_names()
    assert not unknown, f"the dashboard references metrics the server does not export: {unknown}"
    shown = {
        spec.name
        for spec in metrics.SPECS
        if any(n.startswith(spec.name.removesuffix("_total")) for n in referenced(exprs))
    }
    assert shown == {spec.name for spec in metrics.SPECS}, "every metric has a panel"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


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
    m.stream_defaults.labels("item_ctr_1h", "missing_or_stale").inc()
    body, content_type = m.exposition()
    exported = {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines() if not line.startswith("#")}
    assert exported == metrics.exposed_names()
    assert content_type.startswith("text/plain")
    assert metrics.ServingMetrics().registry is not m.registry, "two servers never share counters"
