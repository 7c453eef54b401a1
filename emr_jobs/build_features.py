"""Spark entrypoint: build, validate and publish the offline feature store.

    # hourly incremental run (the last complete hour), on EMR Serverless or a cluster:
    spark-submit emr_jobs/build_features.py --env dev --raw s3://raw-bucket --features s3://features-bucket \\
        --hours-back 1
    # full backfill, locally, then the online stores:
    spark-submit --master 'local[*]' emr_jobs/build_features.py --home ./.rankops --materialize

Lake locations come from the arguments or the environment's configuration
(``RANKOPS_LAKE__*`` variables), so the same file runs on a laptop and as an EMR
job run. Exit status 2 and one line on stderr when validation rejects the run
(nothing is published; the JSON report is in the feature set's ``_meta/runs``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rankops.config import load_settings
from rankops.errors import RankopsError
from rankops.features import offline
from rankops.features.materialize import materialize
from rankops.lake import Lake
from rankops.spark_session import get_spark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="environment (default $RANKOPS_ENV or local)")
    parser.add_argument("--home", default=None, help="RANKOPS_HOME for local runs")
    parser.add_argument("--lake-root", default=None, help="lake root (folder or s3://bucket/prefix)")
    parser.add_argument("--raw", default=None, help="raw zone location (overrides the lake root)")
    parser.add_argument("--features", default=None, help="features zone location (overrides the lake root)")
    parser.add_argument("--start", default=None, help="window start, ISO UTC (default: backfill)")
    parser.add_argument("--end", default=None, help="window end, exclusive, ISO UTC (default now / end of data)")
    parser.add_argument("--hours-back", type=int, default=None, help="the last N complete hours before --end")
    parser.add_argument(
        "--materialize", action="store_true", help="after publishing, push the latest values to the online stores"
    )
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    for name, value in (("ROOT", args.lake_root), ("RAW", args.raw), ("FEATURES", args.features)):
        if value:
            environ[f"RANKOPS_LAKE__{name}"] = value
    try:
        settings = load_settings(env=args.env, home=args.home, environ=environ)
        lake = Lake.from_settings(settings)
        window = offline.resolve_window(
            lake,
            start=offline.parse_time(args.start) if args.start else None,
            end=offline.parse_time(args.end) if args.end else None,
            hours_back=args.hours_back,
        )
        result = offline.build(get_spark(settings, "rankops-build-features"), lake, settings, window)
        materialized = materialize(lake, settings) if args.materialize else None
    except RankopsError as err:
        print(f"build_features: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({**result.summary(), "materialized": materialized}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
