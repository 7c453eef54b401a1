"""SageMaker Processing entrypoint for the off-policy gate: challenger vs champion on the feedback log.

    python -m sagemaker_jobs.offpolicy.entry                     # in the container
    python -m sagemaker_jobs.offpolicy.entry --base-dir /tmp/run  # locally

Feedback: ``--data-capture s3://<raw>/datacapture --endpoint NAME`` (AWS: the endpoint's data
capture, the destination the serving template configures, passed by the state machine) or
``--data-capture none`` (default; the lake's feedback log, which the local server writes).
Input under ``/opt/ml/processing/input``: ``evaluation`` (the evaluation job's output folder,
with ``evaluation.json``: the challenger version, the champion version and the gate record).
Output: ``/opt/ml/processing/output/offpolicy/offpolicy.json`` with the decision (``pass``,
``stop``, ``inconclusive``), its reasons and the estimate (also added to the gate record).
Logic: :mod:`rankops.ope.gate`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from rankops.sagemaker_contract import job_parser, job_settings_and_overrides, processing_paths, run_job

    env = dict(os.environ if environ is None else environ)
    parser = job_parser(__doc__ or "")
    parser.add_argument("--evaluation-dir", help="evaluation output (default under <base>)")
    parser.add_argument("--output-dir", help="folder receiving output/offpolicy (default under <base>)")
    parser.add_argument("--data-capture", default="none", help="data capture destination URI, or none (the lake)")
    parser.add_argument("--endpoint", help="the endpoint whose data capture holds the feedback")
    args = parser.parse_args(argv)

    def body() -> dict[str, Any]:
        from datetime import UTC, datetime

        from rankops.errors import DataError
        from rankops.feedback import store
        from rankops.lake import Lake
        from rankops.ope import gate

        settings, _ = job_settings_and_overrides(args, env)
        inputs = {"evaluation": args.evaluation_dir} if args.evaluation_dir else {}
        paths = processing_paths(env, args.base_dir, output_dir=args.output_dir, inputs=inputs)
        source = paths.input("evaluation") / "evaluation.json"
        if not source.is_file():
            raise DataError(f"no evaluation report at {source}; the evaluation job writes it")
        lake, read = Lake.from_settings(settings), None
        if args.data_capture != "none":
            if not args.endpoint:
                raise DataError("--data-capture needs --endpoint (the endpoint whose capture to read)")
            read = store.capture_reader(lake, args.data_capture, args.endpoint)
        doc = gate.run(settings, lake, json.loads(source.read_text()), datetime.now(UTC), read=read)
        out = paths.output("offpolicy")
        out.mkdir(parents=True, exist_ok=True)
        (out / "offpolicy.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return {"version": doc["version"], "decision": doc["decision"], "reasons": doc["reasons"]}

    return run_job("offpolicy", body)


if __name__ == "__main__":
    sys.exit(main())
