"""The Lambda handlers (and the rankops modules they or the pipeline import from Lambda)
load with only the standard library, boto3 and NumPy, as in the Lambda runtime."""

from __future__ import annotations

import subprocess
import sys
import textwrap

ALLOWED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "numpy", "rankops", "lambdas"}
MODULES = [
    "rankops.release.sagemaker",
    "rankops.release.bucketing",
    "rankops.release.state",
    "rankops.release.decisions",
    "lambdas.start_feature_job.handler",
    "rankops.features.runs",
    "lambdas.start_monitor_job.handler",
    "rankops.monitoring.runs",
    "lambdas.keep_stream_job.handler",
    "rankops.features.stream_runs",
    "lambdas.release.handler",
    "rankops.release.endpoint",
    "rankops.release.sagemaker_endpoint",
    "rankops.release.shadow_capture",
    "rankops.release.routing_document",
    "rankops.release.capture_outcomes",
    "rankops.release.ctr_judge",
]


def in_lambda_runtime(allowed: set[str], body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter where only the standard library and ``allowed`` import."""
    guard = textwrap.dedent(
        f"""
        import sys
        allowed = {sorted(allowed)!r}
        class Guard:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in allowed or top.startswith("_"):
                    return None
                raise ImportError(f"{{name}} is not available in the Lambda runtime")
        sys.meta_path.insert(0, Guard())
        """
    )
    script = guard + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)


def test_handlers_import_only_what_lambda_provides() -> None:
    body = f"""
        import importlib
        for module in {MODULES!r}:
            importlib.import_module(module)
        print("ok")
        """
    result = in_lambda_runtime(ALLOWED, body)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_guard_does_block_other_packages() -> None:
    script = (
        "import sys\n"
        "class G:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pydantic': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, G())\n"
        "import rankops.config\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "blocked" in result.stderr


def test_the_canary_outcome_judgement_runs_on_the_layer_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The release Lambda's canary check reads outcome events (parquet, pyarrow from the AWS SDK for
    pandas layer) and judges them (standard library): run it in a process where nothing else exists."""
    from datetime import UTC, datetime

    import pandas as pd

    from rankops.feedback import store
    from rankops.lake import Lake
    from rankops.release import capture_outcomes

    assert capture_outcomes.OUTCOMES_DATASET == store.OUTCOMES_DATASET
    when = pd.Timestamp(datetime(2026, 12, 1, 9, tzinfo=UTC))
    events = [(f"champion-{n}", 1, "click", 1.0, when) for n in range(3000)]
    events += [(f"challenger-{n}", 1, "click", 1.0, when) for n in range(1000)]
    frame = pd.DataFrame(events, columns=["request_id", "position", "outcome", "value", "ts"])
    store.write_outcomes(Lake.zone_reader("raw", str(tmp_path)), frame)
    body = f"""
        from datetime import UTC, datetime
        from rankops.release import capture_outcomes as co
        outcomes = co.read_outcomes({str(tmp_path)!r}, datetime(2026, 12, 1, 8, tzinfo=UTC))
        answers = [(v, f"{{v}}-{{n}}", 6) for v in ("champion", "challenger") for n in range(10_000)]
        thresholds = {{"canary_outcomes": "required", "canary_contact_mde": 0}}
        decision = co.decide(answers, outcomes, thresholds, {{}})
        print(len(outcomes), decision.action, co.blocks(decision, thresholds))
        """
    result = in_lambda_runtime(ALLOWED | {"pyarrow", "pandas", "pytz", "tzdata"}, body)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["4000", "rollback", "True"]
