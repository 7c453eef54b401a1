"""The retraining pipeline: the Step Functions state machine, the Lambdas it invokes, its role.

The definition comes from ``stepfunctions/definition.py`` through
:mod:`infra.constructs.pipeline_definition_source`; this construct only supplies the
resources it names. The state machine logs every event to CloudWatch and traces with
X-Ray. Its role may do what the pipeline's steps need and no more: invoke the pipeline's
Lambdas, publish to the failures and approvals topics, run SageMaker processing/training
jobs named ``<prefix>-*`` as the job role, start feature jobs on the EMR application and
describe the one endpoint (its polling loop). The ``release`` Lambda is the one that creates
models/endpoint configs named ``<prefix>-*`` and updates the endpoint, with the environment's
blue/green policy (``aws.endpoint``, as JSON in ``DEPLOYMENT_POLICY``) and KMS grants on the
endpoint's volume key (its configs name that key); ``check_features`` and ``gate`` only read
the documents they decide on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import METRICS_NAMESPACE, EnvConfig
from infra.constructs.lambda_function import HandlerFunction
from infra.constructs.pipeline_definition_source import LAMBDA_KEY_PREFIX, LAMBDAS, RESOURCE_KEYS, render_definition
from infra.data_access import DataAccess
from infra.nag import (
    KMS_GRANT_ACTIONS,
    NO_RESOURCE_TYPE,
    OWN_LOG_STREAMS,
    S3_GRANT_ACTIONS,
    acknowledge_wildcards,
    cfn_lint_ignore,
    lake_objects,
)
from rankops.release.capture_outcomes import OUTCOMES_DATASET, RAW_ZONE_VARIABLE
from rankops.release.endpoint import CHECK_THRESHOLDS_VARIABLE, DEPLOYMENT_POLICY_VARIABLE, ROUTING_SALT_VARIABLE


def pipeline_lambda_names(config: EnvConfig) -> list[str]:
    """The definition's step Lambdas, then ``aws.pipeline_lambdas``. No deploy-hook Lambdas: the
    release Lambda's checks do their work (docs/release.md, "What judges a release in AWS")."""
    return [*LAMBDAS, *(n for n in config.aws.pipeline_lambdas if n not in LAMBDAS)]


class Pipeline(Construct):
    """Exposes ``state_machine``, ``functions`` (by handler name) and ``definition`` (the ASL text)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        resources: Mapping[str, str],
        data: DataAccess,
        topics: Mapping[str, sns.ITopic],
        job_role_arn: str,
        emr_application_arn: str,
        emr_job_role_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, HandlerFunction] = {}
        for name in pipeline_lambda_names(config):
            environment = {"ENDPOINT_NAME": config.endpoint_name, "METRICS_NAMESPACE": METRICS_NAMESPACE}
            if name == "release":  # the blue/green policy of this environment (rankops.release.endpoint)
                environment[DEPLOYMENT_POLICY_VARIABLE] = json.dumps(config.deployment_policy(), sort_keys=True)
                environment[CHECK_THRESHOLDS_VARIABLE] = json.dumps(config.check_thresholds(), sort_keys=True)
                environment[ROUTING_SALT_VARIABLE] = config.settings.release.bucket_salt
                # the canary's outcome events (rankops.release.capture_outcomes): the lake's raw zone
                environment[RAW_ZONE_VARIABLE] = f"s3://{data.buckets['raw'].bucket_name}"
            self.functions[name] = HandlerFunction(
                self,
                f"Fn{name.title().replace('_', '')}",
                config=config,
                name=name,
                description=f"rankops pipeline step {name}",
                timeout_seconds=300,
                environment=environment,
            )
            if name == "release":
                self._grant_endpoint_checks(config, self.functions[name])
        self._grant_release(config, self.functions["release"].role)
        # the sticky canary's routing document (rankops.release.routing_document); callers get read access
        data.buckets["artifacts"].grant_put(self.functions["release"].role, "release/*")
        acknowledge_wildcards(
            self.functions["release"].role,
            "Wildcards: writes the routing documents under artifacts/release/ (S3 put and KMS grants).",
            S3_GRANT_ACTIONS, KMS_GRANT_ACTIONS, lake_objects("artifacts", "release/"),
        )  # fmt: skip
        # a canary step is judged on the outcome events that joined its answers (raw/outcomes/)
        data.buckets["raw"].grant_read(self.functions["release"].role, f"{OUTCOMES_DATASET}/*")
        acknowledge_wildcards(
            self.functions["release"].role,
            "Wildcards: reads the lake's outcome events under raw/outcomes/ to judge a canary's CTR.",
            S3_GRANT_ACTIONS, KMS_GRANT_ACTIONS, lake_objects("raw", f"{OUTCOMES_DATASET}/"),
        )  # fmt: skip
        # the model archive it releases is checked against the gate's digests first (rankops.integrity)
        data.buckets["artifacts"].grant_read(self.functions["release"].role, "pipeline/*")
        acknowledge_wildcards(
            self.functions["release"].role,
            "Wildcards: reads the training jobs' model archives under artifacts/pipeline/ to verify their SHA-256.",
            S3_GRANT_ACTIONS, KMS_GRANT_ACTIONS, lake_objects("artifacts", "pipeline/"),
        )  # fmt: skip
        for name, zone, prefix in (
            ("check_features", "features", f"{config.settings.features.feature_set}/_meta/"),
            ("gate", "artifacts", "pipeline/"),
        ):
            reader = self.functions[name].role
            data.buckets[zone].grant_read(reader, f"{prefix}*")
            acknowledge_wildcards(
                reader,
                f"Wildcards: reads the pipeline's own documents under {zone}/{prefix} (S3 and KMS read grants), "
                "its own log streams, and X-Ray, which has no resource types.",
                S3_GRANT_ACTIONS, KMS_GRANT_ACTIONS, lake_objects(zone, prefix), OWN_LOG_STREAMS, NO_RESOURCE_TYPE,
            )  # fmt: skip
        substitutions = {
            **resources,
            **{f"{LAMBDA_KEY_PREFIX}{n}": f.function.function_arn for n, f in self.functions.items()},
        }
        missing = sorted(set(RESOURCE_KEYS) - set(substitutions))
        if missing:
            raise ValueError(f"pipeline resources missing {missing}")
        self.definition = render_definition(sorted(substitutions))
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{config.state_machine_name}",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=config.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(self.definition),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            # no `timeout=` here: CDK drops it for a definition given as a string; the
            # execution timeout is the definition's own TimeoutSeconds (stepfunctions/definition.py)
        )
        cfn_lint_ignore(self.state_machine, "W3005")  # CDK: DependsOn the role it also GetAtts (harmless)
        role = self.state_machine.role
        for function in self.functions.values():
            function.function.grant_invoke(role)
        for name in ("failures", "approvals"):
            topics[name].grant_publish(role)
        self._grant_jobs(config, role, job_role_arn)
        role.add_to_principal_policy(  # the DescribeEndpoint polling loop after each release step
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"],
                                resources=[self._arn("sagemaker", f"endpoint/{config.endpoint_name}")])
        )  # fmt: skip
        self._grant_features(role, emr_application_arn, emr_job_role_arn)
        acknowledge_wildcards(
            role,
            "Wildcards: SageMaker jobs are limited to names starting with the environment prefix (names are "
            "made per run); versions of the pipeline's own functions; job runs of the one EMR application; "
            "X-Ray and CloudWatch Logs delivery have no resource types.",
            rf"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            rf"(processing-job|training-job)/{re.escape(config.prefix)}-\*",
            r"Resource::arn:<AWS::Partition>:emr-serverless:.*:/applications/.*/jobruns/\*",
            r"Resource::<[A-Za-z0-9]*Fn[A-Za-z0-9]+Function[0-9A-F]+\.Arn>:\*",
            KMS_GRANT_ACTIONS,
            NO_RESOURCE_TYPE,
        )

    @staticmethod
    def _arn(service: str, resource: str) -> str:
        return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

    def _grant_jobs(self, config: EnvConfig, role: iam.IRole, job_role_arn: str) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[
                    self._arn("sagemaker", f"processing-job/{config.prefix}-*"),
                    self._arn("sagemaker", f"training-job/{config.prefix}-*"),
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[job_role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(  # what the .sync integrations use to wait for jobs
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    self._arn("events", "rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
                    self._arn("events", "rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule"),
                ],
            )
        )

    def _grant_release(self, config: EnvConfig, role: iam.IRole) -> None:
        """The release Lambda: models and endpoint configs of its own naming, the one endpoint."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModels", "sagemaker:ListEndpointConfigs"],
                resources=["*"],  # list actions have no resource types
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                    "sagemaker:AddTags",
                ],
                resources=[
                    self._arn("sagemaker", f"model/{config.prefix}-*"),
                    self._arn("sagemaker", f"endpoint-config/{config.prefix}-*"),
                    self._arn("sagemaker", f"endpoint/{config.endpoint_name}"),
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{config.serving_model_role_name}"],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # Its endpoint configs carry the live config's KmsKeyId (the serving stack's volume key), and
        # SageMaker creates grants on that key as the caller of CreateEndpointConfig/UpdateEndpoint.
        # The key is made by the serving stack, deployed after this one: scoped by its alias.
        keys = self._arn("kms", "key/*")
        alias = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [config.endpoint_volume_key_alias]}}
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[keys],
                conditions={**alias, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[keys], conditions=alias)
        )
        acknowledge_wildcards(
            role,
            "KMS keys of this account and region, narrowed by condition to the one aliased "
            f"{config.endpoint_volume_key_alias} (the serving stack's, deployed after this stack); CreateGrant "
            "only for grants SageMaker makes for the endpoint (kms:GrantIsForAWSResource).",
            r"Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/\*",
        )

    @staticmethod
    def _grant_features(role: iam.IRole, application_arn: str, job_role_arn: str) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["emr-serverless:StartJobRun", "emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"],
                resources=[application_arn, f"{application_arn}/jobruns/*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[job_role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}},
            )
        )

    def _grant_endpoint_checks(self, config: EnvConfig, function: HandlerFunction) -> None:
        """Deploy hooks inspect and smoke-test the endpoint and read its metrics."""
        function.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:InvokeEndpoint"],
                resources=[
                    self._arn("sagemaker", f"endpoint/{config.endpoint_name}"),
                    self._arn("sagemaker", f"endpoint-config/{config.prefix}-*"),
                ],
            )
        )
        function.role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])  # no resource types
        )
        acknowledge_wildcards(
            function.role,
            "Wildcards: models and endpoint configs named with the environment prefix, the function's own log "
            "streams, the pipeline's own documents (feature status, evaluation reports), X-Ray, "
            "cloudwatch:GetMetricData and SageMaker's List calls, which have no resource types.",
            rf"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            rf"(model|endpoint-config)/{re.escape(config.prefix)}-\*",
            OWN_LOG_STREAMS,
            NO_RESOURCE_TYPE,
        )
