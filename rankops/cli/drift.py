"""``rankops drift``: served traffic (the feedback log) against the training reference."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import command, settings_from


def register(sub: Any) -> None:
    p = command(
        sub,
        "drift",
        "PSI per model feature, per hour and day, of the logged answers against the training dataset's reference, "
        "and the KL of each model version's served scores against its training-time scores; "
        "writes a JSON report and a PNG (exit 2 when the window has no traffic).",
        "rankops drift --since 2026-12-01T00:00 --until 2026-12-02T00:00     # default: the last 24 hours",
    )
    p.add_argument("--since", help="window start, ISO time in UTC (default: 24 hours before --until)")
    p.add_argument("--until", help="window end, ISO time in UTC (default: the start of this hour)")
    p.add_argument(
        "--endpoint",
        help="in AWS: judge the answers this SageMaker endpoint captured (data capture), not the lake's feedback log",
    )
    p.add_argument("--dataset", help="dataset hash of the reference (default: the newest processed dataset)")
    p.add_argument("--out", help="folder for drift.json and drift.png (default: RANKOPS_HOME/reports/drift)")
    p.add_argument(
        "--cloudwatch",
        action="store_true",
        help="also publish FeatureDriftPSI (max PSI of the last hour) to CloudWatch, namespace $METRICS_NAMESPACE "
        "(default rankops), dimension Environment=<env>: the P2 drift alarm's metric",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rankops.features.offline import parse_time
    from rankops.lake import Lake
    from rankops.monitoring import drift_job as job
    from rankops.monitoring import drift_report as dr
    from rankops.monitoring.metrics import job_metrics_dir, write_job_metrics

    settings = settings_from(args)
    lake = Lake.from_settings(settings)
    since, until = dr.default_window(
        parse_time(args.until) if args.until else None, parse_time(args.since) if args.since else None
    )
    feedback = job.served(lake, since, until, endpoint=args.endpoint)
    report = job.drift_of(settings, lake, feedback, since, until, args.dataset)
    out = Path(args.out) if args.out else settings.home / "reports" / "drift"
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift.json").write_text(json.dumps(report, indent=2))
    dr.plot(report, out / "drift.png")
    write_job_metrics(job_metrics_dir(settings.home), "drift", dr.prometheus_text(report))  # for /metrics
    if args.cloudwatch:
        import boto3

        dr.publish_cloudwatch(report, boto3.client("cloudwatch"), job.metrics_namespace(), settings.env)
    drifted = ", ".join(report["drifted"]) or "none"
    print(f"max PSI {report['max_psi']:.3f} in the last hour; drifted (> {report['threshold']}): {drifted}")
    for version, entry in (report["score_kl"] or {}).items():
        figure = f"{entry['kl']:.4f}" if entry["kl"] is not None else "n/a (no score reference)"
        print(f"score KL of model version {version} against its training scores: {figure} ({entry['scores']} scores)")
    print(f"report: {out / 'drift.json'}  chart: {out / 'drift.png'}")
    return 0
