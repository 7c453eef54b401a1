"""The Grafana dashboards (business, model, system), generated from code with grafana-foundation-sdk.

The panels are data (:data:`DASHBOARDS`) so a test can check every query against the
metrics actually exported (:mod:`rankops.monitoring.metrics`) and that every metric is shown.
The rendered JSON is checked in under ``assets/`` (Grafana provisioning reads files, and a
reviewer reads the diff); ``python -m rankops.monitoring.dashboards`` rewrites it, and a test
fails when it is stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

ASSETS = Path(__file__).parent / "assets"
RATE = "$__rate_interval"
SERVED = 'outcome!="rejected"'


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)


def _quantiles(
    metric: str, by: str = "", selector: str = "", qs: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> tuple[tuple[str, str], ...]:
    sel = f"{{{selector}}}" if selector else ""
    group = f"le, {by}" if by else "le"
    legend = f" {{{{{by}}}}}" if by else ""
    return tuple(
        (f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{sel}[{RATE}])))", f"p{q * 100:g}{legend}")
        for q in qs
    )


BUSINESS = (
    PanelSpec(
        "CTR@10 by variant and model version",
        "percentunit",
        (('rankops_online_ctr{k="10"}', "{{variant}} v{{model_version}}"),),
    ),
    PanelSpec("Contact rate", "percentunit", (("rankops_online_contact_rate", "{{variant}} v{{model_version}}"),)),
    PanelSpec("Revenue proxy (last hour)", "none", (("rankops_revenue_proxy", "{{variant}} v{{model_version}}"),)),
    PanelSpec(
        "NDCG@10 from observed outcomes", "none", (('rankops_online_ndcg{k="10"}', "{{variant}} v{{model_version}}"),)
    ),
    PanelSpec(
        "Catalogue coverage of the top 10",
        "percentunit",
        (("rankops_catalogue_coverage", "{{variant}} v{{model_version}}"),),
    ),
    PanelSpec("Canary share", "percentunit", (("rankops_canary_share", "canary"),)),
)
MODEL = (
    PanelSpec("Feature drift PSI (hourly)", "none", (('rankops_feature_drift_psi{window="hour"}', "{{feature}}"),)),
    PanelSpec("Score KL against the training reference", "none", (("rankops_score_kl", "{{window}}"),)),
    PanelSpec("Score quantiles by answering level", "none", _quantiles("rankops_score", "level", qs=(0.1, 0.5, 0.9))),
    PanelSpec(
        "Answers below the routed model, by level",
        "reqps",
        (("sum by (variant, level) (rate(rankops_fallback_total[$__rate_interval]))", "{{variant}} -> {{level}}"),),
    ),
    PanelSpec(
        "Candidates without stored features",
        "percentunit",
        (
            (
                "sum(rate(rankops_candidates_missing_features_total[$__rate_interval]))"
                " / sum(rate(rankops_candidates_total[$__rate_interval]))",
                "missing",
            ),
        ),
    ),
    PanelSpec("Shadow rank correlation", "none", _quantiles("rankops_shadow_rank_correlation", qs=(0.1, 0.5))),
    PanelSpec(
        "Shadow scorings by outcome",
        "ops",
        (("sum by (outcome) (rate(rankops_shadow_total[$__rate_interval]))", "{{outcome}}"),),
    ),
    PanelSpec("Model version per role", "none", (("rankops_model_version", "{{role}}"),)),
    PanelSpec(
        "Release reloads",
        "ops",
        (("sum by (outcome) (rate(rankops_release_reloads_total[$__rate_interval]))", "{{outcome}}"),),
    ),
)
SYSTEM = (
    PanelSpec("Request latency by variant", "s", _quantiles("rankops_request_seconds", "variant", SERVED)),
    PanelSpec(
        "Requests by outcome",
        "reqps",
        (("sum by (outcome) (rate(rankops_request_seconds_count[$__rate_interval]))", "{{outcome}}"),),
    ),
    PanelSpec(
        "Mean request time",
        "s",
        (
            (
                "sum(rate(rankops_request_seconds_sum[$__rate_interval]))"
                " / sum(rate(rankops_request_seconds_count[$__rate_interval]))",
                "mean",
            ),
        ),
    ),
    PanelSpec("Online-store read p95 by store", "s", _quantiles("rankops_feature_fetch_seconds", "store", qs=(0.95,))),
    PanelSpec(
        "Store errors",
        "ops",
        (("sum by (store, reason) (rate(rankops_store_errors_total[$__rate_interval]))", "{{store}} {{reason}}"),),
    ),
    PanelSpec(
        "Feedback log records by outcome",
        "ops",
        (("sum by (outcome) (rate(rankops_feedback_records_total[$__rate_interval]))", "{{outcome}}"),),
    ),
    PanelSpec(
        "Age of the online features", "s", (("time() - rankops_features_materialized_timestamp_seconds", "{{entity}}"),)
    ),
    PanelSpec("Last pipeline run ok", "bool", (("rankops_pipeline_last_run_ok", "ok"),)),
)
DASHBOARDS: dict[str, tuple[PanelSpec, ...]] = {"business": BUSINESS, "model": MODEL, "system": SYSTEM}


def build(name: str) -> dict[str, Any]:
    """One dashboard as Grafana JSON (a dict), panels two per row."""
    source = DataSourceRef(type_val="prometheus", uid="${datasource}")
    board = (
        Dashboard(f"rankops {name}")
        .uid(f"rankops-{name}")
        .tags(["rankops"])
        .refresh("1m")
        .time("now-24h", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for spec in DASHBOARDS[name]:
        panel = Panel().title(spec.title).unit(spec.unit).datasource(source).height(8).span(12)
        for ref, (expr, legend) in zip("ABCDEFGH", spec.queries, strict=False):
            panel = panel.with_target(Dataquery().expr(expr).legend_format(legend).ref_id(ref))
        board = board.with_panel(panel)
    rendered: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return rendered


def render(name: str) -> str:
    return json.dumps(build(name), indent=2, sort_keys=True) + "\n"


def path(name: str) -> Path:
    return ASSETS / f"grafana-{name}.json"


def main() -> None:
    for name in DASHBOARDS:
        path(name).write_text(render(name))


if __name__ == "__main__":
    main()
