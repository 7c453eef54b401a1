"""The deploy-hook handlers (and the rankops modules they or the pipeline import from Lambda)
load with only the standard library, boto3 and NumPy, as in the Lambda runtime."""

from __future__ import annotations

import subprocess
import sys
import textwrap

ALLOWED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "numpy", "rankops", "lambdas"}
MODULES = [
    "lambdas.pre_traffic.handler",
    "lambdas.post_traffic.handler",
    "rankops.release.sagemaker",
    "rankops.release.bucketing",
    "rankops.release.state",
    "rankops.release.decisions",
    "lambdas.start_feature_job.handler",
    "rankops.features.runs",
    "lambdas.keep_stream_job.handler",
    "rankops.features.stream_runs",
    "lambdas.release.handler",
    "rankops.release.endpoint",
    "rankops.release.sagemaker_endpoint",
    "rankops.release.shadow_capture",
    "rankops.release.routing_document",
]


def test_handlers_import_only_what_lambda_provides() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, sys
        allowed = {sorted(ALLOWED)!r}
        class Guard:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in allowed or top.startswith("_"):
                    return None
                raise ImportError(f"{{name}} is not available in the Lambda runtime")
        sys.meta_path.insert(0, Guard())
        for module in {MODULES!r}:
            importlib.import_module(module)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
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
