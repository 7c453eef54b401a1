"""SageMaker Processing entrypoint for evaluation: challenger vs champion on one holdout, the gate.

    python -m sagemaker_jobs.evaluation.entry --on-pass challenger  # in the container
    python -m sagemaker_jobs.evaluation.entry --base-dir /tmp/run   # locally

Inputs under ``/opt/ml/processing/input``: ``model`` (the training job's model folder or
``model.tar.gz``) and ``holdout`` (the processing job's holdout channel); each can be
pointed elsewhere (``--model-dir``, ``--holdout-dir``). Output:
``/opt/ml/processing/output/evaluation/evaluation.json`` with the decision, every reason,
the metric sets and the thresholds (also recorded in the lake and in MLflow).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from rankops.sagemaker_contract import (
        execution_id,
        job_parser,
        job_settings_and_overrides,
        processing_paths,
        run_job,
    )

    env = dict(os.environ if environ is None else environ)
    parser = job_parser(__doc__ or "")
    parser.add_argument("--model-dir", help="challenger model folder (default <base>/opt/ml/processing/input/model)")
    parser.add_argument("--holdout-dir", help="holdout channel (default <base>/opt/ml/processing/input/holdout)")
    parser.add_argument("--output-dir", help="folder receiving output/evaluation (default under <base>)")
    parser.add_argument(
        "--on-pass",
        choices=["champion", "challenger", "none"],
        help="alias a passing challenger receives (default: gate.on_pass of the environment)",
    )
    args = parser.parse_args(argv)

    def body() -> dict[str, Any]:
        from rankops.lake import Lake
        from rankops.training.jobs import code_version, evaluation

        settings, overridden = job_settings_and_overrides(args, env)
        inputs = {k: v for k, v in (("model", args.model_dir), ("holdout", args.holdout_dir)) if v}
        paths = processing_paths(env, args.base_dir, output_dir=args.output_dir, inputs=inputs)
        on_pass = {None: None, "none": ""}.get(args.on_pass, args.on_pass)
        outcome = evaluation.run(
            settings,
            paths,
            lake=Lake.from_settings(settings),
            on_pass=on_pass,
            code_version=code_version(env),
            pipeline_execution_id=execution_id(args, env),
            overridden=overridden,
        )
        return {
            "version": outcome.version,
            "fallback_version": outcome.fallback_version,
            "decision": outcome.decision.decision,
            "reasons": outcome.decision.reasons,
            "aliases": outcome.aliases,
            "gate": outcome.gate_uri,
            "lineage": outcome.lineage_uri,
        }

    return run_job("evaluation", body)


if __name__ == "__main__":
    sys.exit(main())
