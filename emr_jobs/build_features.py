"""Spark entrypoint: build the offline feature store from the lake's raw zone.

    spark-submit emr_jobs/build_features.py --env dev
    # or locally: spark-submit --master 'local[*]' emr_jobs/build_features.py --home ./.rankops

Lake locations come from the environment's configuration (``RANKOPS_LAKE__*``
variables on EMR), so the same file runs on a laptop and as an EMR job run.
"""

from __future__ import annotations

import argparse
import json
import sys

from rankops.config import load_settings
from rankops.errors import RankopsError
from rankops.features import offline
from rankops.lake import Lake
from rankops.spark_session import get_spark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="environment (default $RANKOPS_ENV or local)")
    parser.add_argument("--home", default=None, help="RANKOPS_HOME for local runs")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(env=args.env, home=args.home)
        result = offline.build(get_spark(settings, "rankops-build-features"), Lake.from_settings(settings), settings)
    except RankopsError as err:
        print(f"build_features: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"version": result.version, "run_id": result.run_id, "rows": result.rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
