"""``rankops demo``: the whole local loop, end to end, on embedded defaults.

generate -> features (Spark) -> materialize -> train + evaluate -> MLflow registry
(alias champion) -> inference server in the background -> one real request ranked.
Every number printed is computed on this run's data; nothing is canned.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any

from rankops.cli.common import Progress
from rankops.config import Settings
from rankops.features import offline
from rankops.features.materialize import materialize
from rankops.lake import Lake
from rankops.serving import background
from rankops.spark_session import get_spark
from rankops.synthetic import MarketplaceSpec, generate, parse_start, write_marketplace
from rankops.training.workflow import TrainReport, train_from_lake


@dataclass
class DemoResult:
    report: TrainReport
    request: dict[str, Any]
    response: dict[str, Any]
    server: dict[str, Any] | None


def run_demo(
    settings: Settings,
    events: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    serve: bool = True,
    fresh: bool = True,
    progress: Progress | None = None,
) -> DemoResult:
    say = progress or Progress(total=6)
    cfg = settings.synthetic
    lake = Lake.from_settings(settings)
    if fresh:
        background.stop(settings.home)
        for sub in ("lake", "online", "mlflow"):
            shutil.rmtree(settings.home / sub, ignore_errors=True)

    spec = MarketplaceSpec(
        events=events or cfg.events,
        days=days or cfg.days,
        seed=cfg.seed if seed is None else seed,
        start=parse_start(cfg.start),
    )
    say.stage(f"generate: {spec.events:,} synthetic marketplace events over {spec.days} days (seed {spec.seed})")
    summary = write_marketplace(lake, generate(spec, say.info), say.info)
    say.info(f"{summary['events']:,} events, {summary['requests']:,} searches -> {lake.uri('raw', 'events')}")
    say.done()

    say.stage("features: point-in-time item features with Spark (local[*])")
    spark = get_spark(settings, "rankops-demo")
    built = offline.build(spark, lake, settings)
    say.info(f"feature set {built.version}: {sum(built.rows.values()):,} rows -> {lake.uri('features')}")
    say.done()

    say.stage("materialize: latest values -> embedded online store")
    materialize(lake, settings, progress=say.info)
    say.done()

    say.stage("train: LightGBM lambdarank, evaluated on the newest 15% of searches, registered in MLflow")
    report = train_from_lake(spark, lake, settings, progress=say.info)
    say.done()

    say.stage("serve: inference server in the background (GET /ping, POST /invocations)")
    request = {
        "user_id": report.holdout_example["user_id"],
        "context": {"category": report.holdout_example["query_category"], "device": report.holdout_example["device"]},
        "candidates": list(report.holdout_example["candidates"])[:10],
    }
    server = None
    if serve:
        server = background.start(settings.home, settings.env, settings.serving.host, settings.serving.port)
        say.info(f"listening on {server['url']} (pid {server['pid']})")
        response = background.post_json(server["url"], request)
    else:
        from rankops.serving.entrypoint import build_ranker
        from rankops.serving.schema import RankRequest

        ranker = build_ranker(settings)
        response = ranker.rank(RankRequest(request["user_id"], request["candidates"], request["context"]))
        ranker.lookup.close()
    say.done()
    return DemoResult(report, request, response, server)


def summary_text(settings: Settings, result: DemoResult, elapsed_s: float) -> str:
    """What the user should look at, and where."""
    report, k = result.report, settings.evaluation.ndcg_k
    ndcg = f"ndcg@{k}"
    rows = [("model (LightGBM lambdarank)", report.model), *((f"{n} baseline", m) for n, m in report.baselines.items())]
    lines = [
        "",
        f"rankops demo finished in {elapsed_s:.0f}s",
        "",
        f"Holdout ({report.rows['holdout']:,} rows, newest searches):",
    ]
    lines += [
        f"  {name:<30} NDCG@{k} {m[ndcg]:.4f}   MAP@{settings.evaluation.map_k} "
        f"{m[f'map@{settings.evaluation.map_k}']:.4f}   coverage@{k} {m[f'coverage@{k}']:.3f}"
        for name, m in rows
    ]
    lines += [
        "",
        f"A real request: {json.dumps(result.request)}",
        f"Ranked by model version {result.response['model_version']} ({result.response['variant']}):",
    ]
    lines += [
        f"  {i + 1:>2}. {r['item_id']:<10} score {r['score']:+.4f}" for i, r in enumerate(result.response["ranking"])
    ]
    home = settings.home
    lines += [
        "",
        "Where to look:",
        f"  data lake        {home / 'lake'}",
        f"  MLflow           {settings.mlflow_tracking_uri()}",
        f"                   browse: .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri()}",
        f"  online store     {home / 'online' / 'features.sqlite'}",
    ]
    if result.server:
        url = result.server["url"]
        lines += [
            f"  inference server {url}  (log {result.server['log']})",
            f"                   curl -s -H 'Content-Type: application/json' -d '{json.dumps(result.request)}' "
            f"{url}/invocations",
            f"  stop the server  .venv/bin/rankops --home {home} serve --stop",
        ]
    return "\n".join(lines)
