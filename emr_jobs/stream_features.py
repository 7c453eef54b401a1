"""Spark entrypoint: the streaming feature job (raw events -> windowed features in the online store).

    # locally, for 30 s (or --once: process what is in the source, then stop):
    spark-submit --master 'local[2]' emr_jobs/stream_features.py --home ./.rankops --for 30
    # on EMR Serverless (started by lambdas/keep_stream_job): --source kinesis://<stream> --for inf

Exit status 2 and one line on stderr when it cannot run (e.g. the source folder does not exist);
on success one JSON line: batches, values written, events accepted / late / quarantined.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from rankops.config import load_settings
from rankops.errors import RankopsError
from rankops.features import registry
from rankops.features.stream_runs import freshness_reporter
from rankops.features.streaming import StreamConfig, run_job
from rankops.lake import Lake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="environment (default $RANKOPS_ENV or local)")
    parser.add_argument("--home", default=None, help="RANKOPS_HOME for local runs")
    parser.add_argument("--source", default=None, help="raw event folder (default <raw zone>/stream/events)")
    parser.add_argument("--folder", default=None, help="job folder: checkpoints, late and quarantined events")
    parser.add_argument("--for", dest="seconds", type=float, default=None, help="run this many seconds")
    parser.add_argument("--once", action="store_true", help="process what is in the source, then stop")
    parser.add_argument("--trigger-s", type=float, default=5.0, help="micro-batch interval, seconds")
    parser.add_argument("--delay-s", type=float, default=120.0, help="watermark delay, seconds")
    parser.add_argument("--max-files-per-trigger", type=int, default=None, help="source files per micro-batch")
    parser.add_argument("--metrics-namespace", default=None, help="publish freshness to CloudWatch (AWS runs)")
    args = parser.parse_args(argv)
    try:
        if (args.seconds is None) == (not args.once):
            raise RankopsError("give exactly one of --for SECONDS and --once")
        settings = load_settings(env=args.env, home=args.home)
        lake = Lake.from_settings(settings)
        defaults = StreamConfig.from_lake(lake)
        cfg = StreamConfig(
            args.source or defaults.source,
            args.folder or defaults.folder,
            delay=timedelta(seconds=args.delay_s),
            trigger_s=args.trigger_s,
            max_files_per_trigger=args.max_files_per_trigger,
        )
        reporter = None
        if args.metrics_namespace:  # the EMR Serverless run (infra/constructs/stream_compute.py)
            import boto3

            slide = int(registry.STREAM_SLIDE.total_seconds())
            cloudwatch = boto3.client("cloudwatch")
            reporter = freshness_reporter(cloudwatch, args.metrics_namespace, settings.env, slide)
        report = run_job(settings, lake, cfg, None if args.once else args.seconds, reporter)
    except RankopsError as err:
        print(f"stream_features: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
