"""``rankops demo``: the whole local loop, end to end, on embedded defaults.

generate -> features (Spark) -> materialize -> the retraining pipeline (the deployed Step
Functions definition, run locally: processing, training, evaluation, gate, MLflow registry,
release to the local inference server) -> one real request ranked. Every number printed is
computed on this run's data; nothing is canned.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankops import background, registry
from rankops.config import Settings
from rankops.demo_reset import RESET_FOLDERS
from rankops.errors import ConfigError, RankopsError
from rankops.features import offline
from rankops.features.materialize import materialize
from rankops.lake import ZONES, Lake
from rankops.pipeline.local import run_local
from rankops.pipeline.runner import ExecutionRecord, StateRecord
from rankops.progress import Progress
from rankops.spark_session import get_spark
from rankops.synthetic import MarketplaceSpec, ensure_raw_empty, generate, parse_start, write_marketplace


@dataclass
class DemoResult:
    execution: ExecutionRecord
    gate: dict[str, Any]  # the pipeline's gate decision, with the holdout metrics of every ranking
    best_iteration: int
    request: dict[str, Any]
    response: dict[str, Any]
    server: dict[str, Any]


def _example_request(lake: Lake) -> dict[str, Any]:
    """The newest logged search: what a caller would send for it."""
    events = lake.read(
        "raw",
        "events",
        ["ts", "request_id", "user_id", "query_category", "device", "item_id"],
        lake.partitions("raw", "events")[-1:],
    ).to_pandas()
    rows = events[events["request_id"] == events.sort_values("ts")["request_id"].iloc[-1]]
    first = rows.iloc[0]
    return {
        "user_id": first["user_id"],
        "context": {"category": first["query_category"], "device": first["device"]},
        "candidates": list(dict.fromkeys(rows["item_id"]))[:10],
    }


def demo_spec(settings: Settings, events: int | None, days: int | None, seed: int | None) -> MarketplaceSpec:
    """The marketplace the demo generates: the arguments over ``synthetic.*``, validated
    (``0`` is a value like any other, so ``--events 0`` is an error, not the default)."""
    cfg = settings.synthetic
    return MarketplaceSpec(
        events=cfg.events if events is None else events,
        days=cfg.days if days is None else days,
        seed=cfg.seed if seed is None else seed,
        start=parse_start(cfg.start),
    )


def _lake_inside(lake: Lake, folder: Path) -> bool:
    for zone in ZONES:
        uri = lake.zone_uri(zone)  # type: ignore[arg-type]
        if "://" in uri or not Path(uri).resolve().is_relative_to(folder.resolve()):
            return False
    return True


def run_demo(
    settings: Settings,
    events: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    fresh: bool = True,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the whole local loop. With ``fresh`` (the CLI's only mode) the demo starts from a clean
    home: it stops this home's background server and removes ``RESET_FOLDERS`` under the home,
    but only after every argument and setting has been checked, so a bad input deletes nothing."""
    say = progress or Progress(total=4)
    if not settings.is_local:
        raise ConfigError(f"the demo runs the local platform only; got --env {settings.env} (use --env local)")
    spec = demo_spec(settings, events, days, seed)
    lake = Lake.from_settings(settings)
    lake_reset = fresh and _lake_inside(lake, settings.home / "lake")
    if not lake_reset:  # a lake outside the home (lake.root) is never wiped: it must not hold raw data
        ensure_raw_empty(lake)
    if fresh:
        background.stop(settings.home)
        for sub in RESET_FOLDERS:
            shutil.rmtree(settings.home / sub, ignore_errors=True)

    say.stage(f"generate: {spec.events:,} synthetic marketplace events over {spec.days} days (seed {spec.seed})")
    summary = write_marketplace(lake, generate(spec, say.info), say.info, replace=lake_reset)
    say.info(f"{summary['events']:,} events, {summary['requests']:,} searches -> {lake.uri('raw', 'events')}")
    say.done()

    say.stage("features: point-in-time item, seller and category features with Spark, then the online store")
    built = offline.build(get_spark(settings, "rankops-demo"), lake, settings)
    say.info(f"feature set {built.version}: {sum(built.rows.values()):,} rows -> {lake.uri('features')}")
    materialize(lake, settings, progress=say.info)
    say.done()

    say.stage("pipeline: the deployed Step Functions definition, run locally (moto's interpreter)")

    def state_line(record: StateRecord) -> None:
        if record.status != "running" and record.type not in ("Choice", "Pass", "Succeed"):
            say.info(
                f"{'ok' if record.status == 'succeeded' else 'FAILED':>6}  {record.name:<22} {record.seconds:6.1f}s"
            )

    execution = run_local(settings, {"snapshot": "latest", "reason": "demo"}, on_state=state_line)
    if execution.status != "SUCCEEDED":
        raise RankopsError(
            f"the pipeline {execution.status}: {execution.error}: {str(execution.cause)[:300]} "
            f"(rankops --home {settings.home} pipeline history --show {execution.name})"
        )
    gate = execution.output["gate"]["result"]
    client, _ = registry.connect(settings)
    tags = client.get_model_version(settings.mlflow.model_name, gate["version"]).tags
    say.done()

    say.stage("serve: the released champion answers on the local endpoint (GET /ping, POST /invocations)")
    server = background.status(settings.home)
    if server is None:
        raise RankopsError("the pipeline released a model but no local inference server is running")
    request = _example_request(lake)
    response = background.post_json(server["url"], request)
    say.info(f"{server['url']} (pid {server['pid']})")
    say.done()
    return DemoResult(execution, gate, int(tags.get("best_iteration", "0")), request, response, server)


def demo_log(settings: Settings) -> Path:
    """Where ``rankops demo`` sends Spark's, Java's and the libraries' log lines."""
    return settings.home / "run" / "demo.log"


def monitoring_lines(settings: Settings, url: str) -> list[str]:
    """Where the dashboards, the drift report and the feedback log are (part of the demo's summary)."""
    from rankops import monitoring
    from rankops.feedback.log import LOCAL_ENDPOINT, capture_uri

    assets = Path(monitoring.__file__).parent / "assets"
    lake, home = Lake.from_settings(settings), settings.home
    flush = settings.serving.feedback_flush_s
    return [
        f"  dashboards       {', '.join(str(assets / f'grafana-{d}.json') for d in ('business', 'model', 'system'))}",
        f"                   (import into Grafana; Prometheus scrapes {url}/metrics, alert rules "
        f"{assets / 'prometheus-rules.yml'})",
        f"  feedback log     {capture_uri(lake)}/{LOCAL_ENDPOINT}  (every answer, as SageMaker data capture;"
        f" written every {flush:g}s)",
        f"  drift report     .venv/bin/rankops --home {home} drift  ->  {home / 'reports' / 'drift' / 'drift.json'}"
        " and drift.png",
        f"  Spark/Java logs  {demo_log(settings)}",
    ]


def summary_text(settings: Settings, result: DemoResult, elapsed_s: float) -> str:
    """What the user should look at, and where."""
    k, m = settings.evaluation.ndcg_k, settings.evaluation.map_k
    metrics = result.gate["metrics"]
    rows = [
        ("model (LightGBM lambdarank)", metrics["challenger"]),
        ("fallback model", metrics["fallback"]),
        *((f"{b.removeprefix('baseline_')} baseline", v) for b, v in metrics.items() if b.startswith("baseline_")),
    ]
    lines = [
        "",
        f"rankops demo finished in {elapsed_s:.0f}s",
        "",
        f"Holdout (the newest searches), model version {result.gate['version']}, "
        f"best iteration {result.best_iteration}:",
    ]
    lines += [
        f"  {name:<30} NDCG@{k} {v[f'ndcg@{k}']:.4f}   MAP@{m} {v[f'map@{m}']:.4f}   coverage@{k} "
        f"{v[f'coverage@{k}']:.3f}"
        for name, v in rows
    ]
    lines += [
        "",
        f"Gate: {result.gate['decision']} - " + "; ".join(result.gate["reasons"]),
        "",
        f"A real request: {json.dumps(result.request)}",
        f"Ranked by model version {result.response['model_version']} ({result.response['variant']}):",
    ]
    lines += [
        f"  {i + 1:>2}. {r['item_id']:<10} score {r['score']:+.4f}" for i, r in enumerate(result.response["ranking"])
    ]
    home, url = settings.home, result.server["url"]
    lines += [
        "",
        "Where to look:",
        f"  data lake        {home / 'lake'}",
        f"  pipeline runs    .venv/bin/rankops --home {home} pipeline history --show {result.execution.name}",
        f"  MLflow           {settings.mlflow_tracking_uri()}",
        f"                   browse: .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri()}",
        f"  models           .venv/bin/rankops --home {home} models list",
        f"  inference server {url}  (log {result.server['log']})",
        f"                   curl -s -H 'Content-Type: application/json' -d '{json.dumps(result.request)}' "
        f"{url}/invocations",
        *monitoring_lines(settings, url),
        f"  stop the server  .venv/bin/rankops --home {home} serve --stop",
    ]
    return "\n".join(lines)
