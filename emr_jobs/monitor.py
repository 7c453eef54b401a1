"""Spark entrypoint: judge one closed hour of an endpoint's data capture and publish to CloudWatch.

    # what the hourly schedule starts on EMR Serverless (lambdas/start_monitor_job adds --hour):
    spark-submit emr_jobs/monitor.py --env prod --endpoint rankops-prod-ranker \\
        --capture-uri s3://raw-bucket/datacapture --metrics-namespace rankops --hour 2026-12-01T09:00

``FeatureDriftPSI`` (the drift job) and ``RevenueProxy`` (the online metrics job) of the hour, in
``--metrics-namespace`` with dimension ``Environment=<env>`` (:mod:`rankops.monitoring.hourly`).
Lake locations come from the environment's configuration (``RANKOPS_LAKE__*``). Prints what it
published as JSON; exit status 2 and one line on stderr per part that could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from rankops.config import load_settings
from rankops.errors import RankopsError
from rankops.features.offline import parse_time
from rankops.lake import Lake
from rankops.monitoring.hourly import run_hour
from rankops.spark_session import get_spark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="environment (default $RANKOPS_ENV or local)")
    parser.add_argument("--endpoint", required=True, help="the SageMaker endpoint whose answers are judged")
    parser.add_argument("--capture-uri", required=True, help="the endpoint's data capture destination (s3://...)")
    parser.add_argument("--metrics-namespace", default="rankops", help="CloudWatch namespace of the metrics")
    parser.add_argument("--hour", default=None, help="the hour's start, ISO UTC (default: the last closed hour)")
    parser.add_argument("--k", type=int, default=10, help="top positions counted by CTR@k and NDCG@k")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(env=args.env)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        hour = parse_time(args.hour) if args.hour else now - timedelta(hours=1)
        import boto3

        result = run_hour(
            settings,
            Lake.from_settings(settings),
            hour,
            endpoint=args.endpoint,
            capture_uri=args.capture_uri,
            spark=get_spark(settings, "rankops-monitor"),
            cloudwatch=boto3.client("cloudwatch"),
            namespace=args.metrics_namespace,
            k=args.k,
        )
    except RankopsError as err:
        print(f"monitor: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    for part, message in result["errors"].items():
        print(f"monitor: {part}: {message}", file=sys.stderr)
    return 2 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
