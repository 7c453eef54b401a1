"""``rankops online-metrics``: what users did with the logged answers (Spark, hourly figures)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import command, settings_from


def register(sub: Any) -> None:
    p = command(
        sub,
        "online-metrics",
        "CTR@k, contact rate, revenue proxy, NDCG@k, coverage and answers by fallback level per hour, cohort and "
        "model version, from the feedback log and outcome events (exit 2 when the window has no traffic).",
        "rankops online-metrics --since 2026-12-01T00:00 --until 2026-12-01T06:00 [--cloudwatch]",
    )
    p.add_argument("--since", help="window start, ISO time in UTC (default: 1 hour before --until)")
    p.add_argument("--until", help="window end, ISO time in UTC (default: the start of this hour)")
    p.add_argument("--k", type=int, default=10, help="top positions counted by CTR@k, NDCG@k and coverage")
    p.add_argument("--cloudwatch", action="store_true", help="also publish RevenueProxy (the P1 alarm's metric)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from rankops.features.offline import parse_time
    from rankops.feedback import store
    from rankops.lake import Lake
    from rankops.monitoring import online_metrics as om
    from rankops.monitoring.drift_report import default_window, require_traffic
    from rankops.monitoring.metrics import job_metrics_dir, write_job_metrics
    from rankops.spark_session import get_spark

    settings = settings_from(args)
    lake = Lake.from_settings(settings)
    _, until = default_window(parse_time(args.until) if args.until else None, None)
    since = parse_time(args.since) if args.since else until - timedelta(hours=1)
    feedback = store.read(lake, since, until)
    require_traffic(feedback, since, until)
    rows = om.rows_of(get_spark(settings, "rankops-online-metrics"), lake, feedback, since, args.k)
    out = settings.home / "reports" / "online"
    out.mkdir(parents=True, exist_ok=True)
    (out / "online_metrics.json").write_text(json.dumps(rows, indent=2, default=str))
    write_job_metrics(job_metrics_dir(settings.home), "online", om.prometheus_text(rows))
    if args.cloudwatch:
        import boto3

        from rankops.monitoring.drift_job import metrics_namespace

        om.publish_cloudwatch(rows, boto3.client("cloudwatch"), metrics_namespace(), settings.env)
    for r in rows:
        cohort = f"{r['hour']:%Y-%m-%d %H}h {r['variant']} v{r['model_version']}"
        figures = f"CTR@{args.k} {r['ctr_at_k']:.3f}, contact {r['contact_rate']:.3f}, revenue {r['revenue_proxy']:.1f}"
        print(f"{cohort}: {r['answers']} answers, {figures}")
    print(f"report: {out / 'online_metrics.json'}")
    return 0
