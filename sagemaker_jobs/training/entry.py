"""SageMaker training entrypoint (script mode): channels -> ranker + fallback -> SM_MODEL_DIR.

    python -m sagemaker_jobs.training.entry                      # in the container
    python -m sagemaker_jobs.training.entry --base-dir /tmp/run  # locally: /tmp/run/opt/ml/...

Reads ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION`` (else ``opt/ml/input/data/<name>``),
``/opt/ml/input/config/hyperparameters.json`` (string values: ``seed``,
``num_boost_round``, ``early_stopping_rounds``, ``pipeline_execution_id``, ``overrides``
(JSON configuration overrides, as ``--overrides``), any LightGBM parameter), writes the
MLflow model (+ ``VERSION``, ``fallback/``) to ``SM_MODEL_DIR`` and
``training.json`` to ``SM_OUTPUT_DATA_DIR``. A failure's one-line reason also goes to
``/opt/ml/output/failure``. Extra ``--name value`` arguments (how script mode repeats the
hyperparameters) are ignored: the file is the source.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from rankops.sagemaker_contract import (
        base_dir,
        execution_id,
        job_parser,
        job_settings,
        opt_ml,
        read_hyperparameters,
        run_job,
        training_paths,
    )

    env = dict(os.environ if environ is None else environ)
    args, _script_mode_hyperparameters = job_parser(__doc__ or "").parse_known_args(argv)
    failure = opt_ml(base_dir(env, args.base_dir)) / "output" / "failure"

    def body() -> dict[str, Any]:
        from rankops.training.jobs import code_version, training

        paths = training_paths(env, args.base_dir)
        hyperparameters = read_hyperparameters(paths.hyperparameters_file)
        overrides = hyperparameters.pop("overrides", None)  # the pipeline input's config overrides
        if isinstance(overrides, dict) and not args.overrides:
            args.overrides = overrides
        settings = job_settings(args, env)
        outcome = training.run(
            settings,
            paths,
            hyperparameters,
            code_version=code_version(env),
            pipeline_execution_id=execution_id(args, env),
        )
        return asdict(outcome)

    return run_job("training", body, failure)


if __name__ == "__main__":
    sys.exit(main())
