"""The evidence a release step is judged on, gathered from a running local server.

* per-variant request counts, degradations and p95 latency, from the server's
  Prometheus exposition (``GET /metrics``; all workers aggregated);
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


def variant_stats(exposition: str) -> dict[str, VariantStats]:
    """``{"champion": VariantStats, "challenger": ...}`` from a Prometheus text exposition."""
    counts: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != REQUEST_METRIC:
            continue
        for sample in family.samples:
            variant, outcome = sample.labels.get("variant"), sample.labels.get("outcome")
            if variant is None or outcome not in ("ok", "degraded"):
                continue
            if sample.name.endswith("_count"):
                counts.setdefault(variant, {})[outcome] = counts.get(variant, {}).get(outcome, 0.0) + sample.value
            elif sample.name.endswith("_bucket"):
                upper = float(sample.labels["le"])
                per = buckets.setdefault(variant, {})
                per[upper] = per.get(upper, 0.0) + sample.value
    stats = {}
    for variant, by_outcome in counts.items():
        p95 = histogram_quantile(0.95, list(buckets.get(variant, {}).items()))
        stats[variant] = VariantStats(int(sum(by_outcome.values())), int(by_outcome.get("degraded", 0)), p95)
    return stats


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
