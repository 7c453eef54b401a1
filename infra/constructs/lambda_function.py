"""One Lambda function deployed from ``lambdas/<name>/handler.py``, the way every handler is.

The code is a plain ``Code.from_asset`` of the repository with tight excludes (no
Docker, no bundling): ``lambdas/__init__.py``, ``lambdas/<name>/`` and, when the
handler imports the domain library, ``rankops/``. At run time only the standard
library, boto3 and numpy exist (numpy from the AWS-managed "AWS SDK for pandas"
layer), which is the contract handlers are written against. Each function gets its
own role (only the basic log permissions until the caller grants more), its own log
group with the environment's retention, and X-Ray tracing.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import REPO_ROOT, EnvConfig
from infra.nag import acknowledge, cfn_lint_ignore
from rankops.errors import ConfigError

RUNTIMES = {"python3.11": lambda_.Runtime.PYTHON_3_11, "python3.12": lambda_.Runtime.PYTHON_3_12}


def handler_path(name: str) -> str:
    return f"lambdas/{name}/handler.py"


def handler_exists(name: str) -> bool:
    return (REPO_ROOT / handler_path(name)).is_file()


def asset_excludes(name: str, *, with_rankops: bool) -> list[str]:
    """Exclude everything, then re-include the handler's package (and rankops/ if it needs it)."""
    patterns = ["*", ".*", "!lambdas", "!lambdas/__init__.py", f"!lambdas/{name}", f"!lambdas/{name}/**"]
    if with_rankops:
        patterns += ["!rankops", "!rankops/**"]
    return [*patterns, "**/__pycache__", "**/*.pyc"]


class HandlerFunction(Construct):
    """Exposes ``function``, ``role`` and ``log_group``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        name: str,
        description: str,
        environment: Mapping[str, str] | None = None,
        timeout_seconds: int = 60,
        memory_mb: int = 256,
        with_rankops: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        if not handler_exists(name):
            raise ConfigError(f"Lambda {name!r}: {handler_path(name)} does not exist (aws.pipeline_lambdas?)")
        function_name = config.name_of(name.replace("_", "-"))
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name} handler",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIMES[config.aws.lambda_runtime],
            handler=f"lambdas.{name}.handler.handler",
            code=lambda_.Code.from_asset(str(REPO_ROOT), exclude=asset_excludes(name, with_rankops=with_rankops)),
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "NumpyLayer", config.aws.lambda_numpy_layer_arn)],
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            environment={"RANKOPS_ENV": config.name, **(environment or {})},
        )
        # CDK makes the function DependsOn its role as well as GetAtt-ing its ARN (W3005, harmless).
        cfn_lint_ignore(self.function, "W3005")
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Pinned to {config.aws.lambda_runtime} on purpose: the AWS SDK for pandas layer that supplies numpy "
            "is built per Python version (aws.lambda_runtime and aws.lambda_numpy_layer_arn move together).",
        )
