"""Pipeline registry step (a processing job): register, promote or reject a ranker version.

    python -m sagemaker_jobs.registry.entry --action register --version 7 --env dev

Moves MLflow aliases (challenger / champion / previous) and appends the event to the
version's lineage record. Needs no inputs or outputs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from rankops.sagemaker_contract import execution_id, job_parser, job_settings, run_job
    from rankops.training.jobs.registry_step import ACTIONS

    env = dict(os.environ if environ is None else environ)
    parser = job_parser(__doc__ or "")
    parser.add_argument("--action", required=True, choices=ACTIONS, help="what to do with the version")
    parser.add_argument("--version", required=True, help="the ranker version (the training job registered it)")
    args = parser.parse_args(argv)

    def body() -> dict[str, Any]:
        from rankops.lake import Lake
        from rankops.training.jobs import registry_step

        settings = job_settings(args, env)
        return registry_step.run(
            settings, Lake.from_settings(settings), args.action, args.version, execution_id(args, env)
        )

    return run_job("registry", body)


if __name__ == "__main__":
    sys.exit(main())
