"""The evidence a release step is judged on, gathered from a running local server.

* per-variant request counts, degradations and p95 latency, from the server's
  Prometheus exposition (``GET /metrics``; all workers aggregated). The counters are
  cumulative and not labelled by model version, so a release step is judged on their
  difference from a snapshot taken when the step began (:func:`counters_since`);
* the shadow comparison, merged from every worker's snapshot file under
  ``RANKOPS_HOME/release/shadow`` (only snapshots of the current pair count).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rankops.errors import ReleaseError
from rankops.release.decisions import VariantStats, histogram_quantile
from rankops.release.stats import merge, summarize

REQUEST_METRIC = "rankops_request_seconds"


Counters = dict[str, dict[str, Any]]  # variant -> {"ok": n, "degraded": n, "buckets": {le: cumulative n}}


def request_counters(exposition: str) -> Counters:
    """The cumulative per-variant request counters of a Prometheus text exposition (all workers):
    requests answered ``ok`` and ``degraded``, and the latency buckets of both together."""
    counters: Counters = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != REQUEST_METRIC:
            continue
        for sample in family.samples:
            variant, outcome = sample.labels.get("variant"), sample.labels.get("outcome")
            if variant is None or outcome not in ("ok", "degraded"):
                continue
            per = counters.setdefault(variant, {"ok": 0.0, "degraded": 0.0, "buckets": {}})
            if sample.name.endswith("_count"):
                per[outcome] += sample.value
            elif sample.name.endswith("_bucket"):
                le = sample.labels["le"]
                per["buckets"][le] = per["buckets"].get(le, 0.0) + sample.value
    return counters


def counters_since(current: Counters, base: Counters) -> Counters:
    """What was counted after ``base`` was taken (same server life): the difference, never negative."""
    since: Counters = {}
    for variant, now in current.items():
        before = base.get(variant, {})
        since[variant] = {
            "ok": max(0.0, now["ok"] - float(before.get("ok", 0.0))),
            "degraded": max(0.0, now["degraded"] - float(before.get("degraded", 0.0))),
            "buckets": {
                le: max(0.0, n - float(before.get("buckets", {}).get(le, 0.0))) for le, n in now["buckets"].items()
            },
        }
    return since


def stats_from_counters(counters: Counters) -> dict[str, VariantStats]:
    stats = {}
    for variant, per in counters.items():
        p95 = histogram_quantile(0.95, [(float(le), n) for le, n in per["buckets"].items()])
        stats[variant] = VariantStats(int(per["ok"] + per["degraded"]), int(per["degraded"]), p95)
    return stats


def variant_stats(exposition: str) -> dict[str, VariantStats]:
    """``{"champion": VariantStats, "challenger": ...}`` from a Prometheus text exposition (cumulative:
    everything the server counted since it started)."""
    return stats_from_counters(request_counters(exposition))


def fetch_metrics(url: str, timeout_s: float = 5.0) -> str:
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=timeout_s) as response:  # noqa: S310 - our local server
            return str(response.read().decode())
    except OSError as err:
        raise ReleaseError(f"cannot read metrics from the server at {url}: {err}") from err


def fetch_release(url: str, timeout_s: float = 2.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/release", timeout=timeout_s) as response:  # noqa: S310 - our local server
        doc: dict[str, Any] = json.loads(response.read())
        return doc


def shadow_summary(folder: Path, champion: str | None, challenger: str | None, bins: int) -> dict[str, Any]:
    """Every worker's snapshot for this champion/challenger pair, merged and summarized."""
    snapshots = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a worker is replacing it right now; the next read will see it
        if doc.get("champion") == champion and doc.get("challenger") == challenger:
            snapshots.append(doc)
    return {
        "champion": champion,
        "challenger": challenger,
        "workers": len(snapshots),
        **summarize(merge(snapshots), bins),
    }
