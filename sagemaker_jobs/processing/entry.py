"""SageMaker Processing entrypoint: the lake's logs -> time-split training channels.

    python -m sagemaker_jobs.processing.entry --env dev           # in the container
    python -m sagemaker_jobs.processing.entry --base-dir /tmp/run # locally: /tmp/run/opt/ml/processing/...
    python -m sagemaker_jobs.processing.entry --snapshot 2026-11-01T00:00:00Z   # requests before it only

Writes ``output/{train,validation,holdout,manifest}`` under ``/opt/ml/processing``
(SageMaker uploads each to S3). The lake is read where the configuration says
(``RANKOPS_LAKE__*`` in the cloud); ``--output-dir`` moves every output folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from rankops.sagemaker_contract import job_parser, job_settings, processing_paths, run_job, snapshot_time

    env = dict(os.environ if environ is None else environ)
    parser = job_parser(__doc__ or "")
    parser.add_argument(
        "--output-dir", help="folder receiving the output folders (default <base>/opt/ml/processing/output)"
    )
    parser.add_argument(
        "--snapshot",
        type=snapshot_time,
        default=None,
        help="train on requests logged before this ISO time; 'latest' (default) takes everything",
    )
    args = parser.parse_args(argv)

    def body() -> dict[str, Any]:
        from rankops.lake import Lake
        from rankops.spark_session import get_spark
        from rankops.training.jobs import processing

        settings = job_settings(args, env)
        paths = processing_paths(env, args.base_dir, output_dir=args.output_dir)
        spark = get_spark(settings, "rankops-processing")
        dataset = processing.run(
            settings, paths, spark=spark, lake=Lake.from_settings(settings), snapshot=args.snapshot
        )
        splits = dataset.manifest["splits"]
        rows = {n: s["rows"] for n, s in splits.items()}
        return {"dataset_hash": dataset.dataset_hash, "rows": rows, "output": str(paths.output_dir)}

    return run_job("processing", body)


if __name__ == "__main__":
    sys.exit(main())
