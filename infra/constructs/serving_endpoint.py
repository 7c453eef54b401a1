"""The SageMaker real-time endpoint that serves the ranker, and how it is updated safely.

Model: the rankops image (``serve`` contract) from ECR at ``aws.endpoint.bootstrap_image_tag``
with the model data of the first deployment from ``aws.endpoint.initial_model_data_url``. It
runs in the private subnets with the ``serving`` security group and reads the online stores.
EndpointConfig: one variant, a KMS-encrypted volume (key alias ``alias/<prefix>-endpoint``),
and data capture of requests and responses into the lake's raw zone (``datacapture/``, the
lake's KMS key). Endpoint: blue/green updates with the traffic routing from config
(ALL_AT_ONCE, CANARY or LINEAR) and automatic rollback on the P1 alarms. Auto scaling tracks
invocations per instance.

Who owns the endpoint after the first release
---------------------------------------------
CloudFormation creates the endpoint on this *bootstrap* model and config; from the first
release on, the pipeline's release Lambda moves it to models and endpoint configs of its
own (``rankops.release.sagemaker_endpoint``), which CloudFormation never sees. CloudFormation does
nothing to the endpoint as long as the Endpoint resource and the config it names are
unchanged in the template; when they change, it updates the endpoint back to *its* config,
i.e. the bootstrap model, replacing whatever the pipeline released. So:

* ``aws.image_tag`` (new code) is not used here: it reaches the pipeline's jobs and the models
  the pipeline creates through the state machine's substitutions (``ImageUri``), and ships
  with the next pipeline run. The bootstrap model is pinned to ``bootstrap_image_tag``.
* Model and endpoint-config names carry a digest of exactly what shapes them (bootstrap image
  tag and model data, instance type, initial count, data capture, the container's
  environment variables), so CloudFormation can replace them; autoscaling limits, cooldowns
  and alarm thresholds are not in it and change nothing on the endpoint.
* After the first release, these serving-stack changes RESET the endpoint to the bootstrap
  model: ``aws.endpoint.bootstrap_image_tag``, ``initial_model_data_url``, ``instance_type``,
  ``min_instances``, ``data_capture_percent``, the blue/green policy (``traffic_routing``,
  ``canary_percent``, ``linear_step_percent``, ``wait_interval_seconds``,
  ``termination_wait_seconds``, ``max_execution_timeout_seconds``), the runtime environment
  (new ``RANKOPS_*`` variables), subnets and security groups. Ship them as docs/deploy.md's "What a
  serving-stack deploy resets" says: re-base the bootstrap onto the current champion first
  (its model data and image tag), so the reset deploys the champion with the new settings,
  or deploy and let a pipeline run release again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from aws_cdk import Aws, Duration, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import SERVING_VARIANT, EnvConfig
from infra.constructs.endpoint_alarms import EndpointAlarms
from infra.data_access import DataAccess
from infra.grants import grant_put_metrics, grant_sagemaker_logs, grant_vpc_access
from infra.nag import KMS_GRANT_ACTIONS, NO_RESOURCE_TYPE, S3_GRANT_ACTIONS, acknowledge_wildcards, lake_objects

DATA_CAPTURE_PREFIX = "datacapture"


def config_digest(config: EnvConfig, environment: Mapping[str, str] | None = None) -> str:
    """Ten hex digits over what shapes the bootstrap model and its endpoint config (CloudFormation can
    only replace those, and names them by this digest). Not ``image_tag``: code ships through the
    pipeline. ``environment`` is the container's; deploy-time values (tokens) count by their key."""
    cfg = config.aws.endpoint
    shaped = {
        "image_tag": config.bootstrap_image_tag,
        "model_data_url": cfg.initial_model_data_url,
        "instance_type": cfg.instance_type,
        "instance_count": cfg.min_instances,
        "data_capture_percent": cfg.data_capture_percent,
        "environment": {k: "<deploy time>" if Token.is_unresolved(v) else v for k, v in (environment or {}).items()},
    }
    return hashlib.sha256(json.dumps(shaped, sort_keys=True).encode()).hexdigest()[:10]


def traffic_routing(config: EnvConfig) -> sagemaker.CfnEndpoint.TrafficRoutingConfigProperty:
    cfg = config.aws.endpoint
    percent = "CAPACITY_PERCENT"
    return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type=cfg.traffic_routing,
        wait_interval_in_seconds=cfg.wait_interval_seconds,
        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(type=percent, value=cfg.canary_percent)
        if cfg.traffic_routing == "CANARY"
        else None,
        linear_step_size=sagemaker.CfnEndpoint.CapacitySizeProperty(type=percent, value=cfg.linear_step_percent)
        if cfg.traffic_routing == "LINEAR"
        else None,
    )


BOOTSTRAP_MODEL_KEY = "models/bootstrap/model.tar.gz"
PIPELINE_MODEL_DATA = "pipeline/*/training/"  # the state machine's training OutputDataConfig (per execution)


def _s3_object_arn(url: str) -> str:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return f"arn:{Aws.PARTITION}:s3:::{bucket}/{key}"


class ServingEndpoint(Construct):
    """Exposes ``endpoint``, ``model``, ``endpoint_config``, ``role``, ``volume_key``, ``alarms``,
    ``scaling`` and ``digest`` (see the module's docstring for what a change of each resets)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataAccess,
        lake_key: kms.IKey,
        repository: ecr.IRepository,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        p1: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        cfg = config.aws.endpoint
        environment = {"RANKOPS_ENV": config.name, **data.runtime_environment()}
        self.digest = config_digest(config, environment)
        name = f"{config.endpoint_name}-{self.digest}"
        self.role = self._role(config, data, repository)
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            model_name=name,
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=f"{repository.repository_uri}:{config.bootstrap_image_tag}",
                model_data_url=cfg.initial_model_data_url
                or f"s3://{data.buckets['artifacts'].bucket_name}/{BOOTSTRAP_MODEL_KEY}",
                environment=environment,
            ),
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=subnet_ids, security_group_ids=[security_group.security_group_id]
            ),
        )
        self.model.node.add_dependency(self.role.node.find_child("DefaultPolicy"))  # grants before the model
        self.volume_key = volume_key = kms.Key(
            self,
            "VolumeKey",
            alias=config.endpoint_volume_key_alias,  # the release Lambda's grants name the key by it
            enable_key_rotation=True,
            description=f"{config.prefix} endpoint storage volumes",
            removal_policy=config.removal_policy,
        )
        capture = data.buckets["raw"]
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            endpoint_config_name=name,
            kms_key_id=volume_key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=SERVING_VARIANT,
                    model_name=self.model.attr_model_name,
                    instance_type=cfg.instance_type,
                    initial_instance_count=cfg.min_instances,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=cfg.data_capture_percent > 0,
                initial_sampling_percentage=max(cfg.data_capture_percent, 1),
                destination_s3_uri=f"s3://{capture.bucket_name}/{DATA_CAPTURE_PREFIX}",
                kms_key_id=lake_key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    json_content_types=["application/json"]
                ),
            ),
        )
        volume_key.grant_encrypt_decrypt(self.role)
        self.alarms = EndpointAlarms(self, "Alarms", config=config, p1=p1).alarms
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=config.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=traffic_routing(config),
                    termination_wait_in_seconds=cfg.termination_wait_seconds,
                    maximum_execution_timeout_in_seconds=cfg.max_execution_timeout_seconds,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in self.alarms]
                ),
            ),
            # Keep the instance count auto scaling chose; take the weights from the new config (a canary
            # left behind would otherwise keep its split). DataCaptureConfig is not an excludable
            # property ("not currently supported" in SageMaker's VariantProperty).
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DesiredWeight")
            ],
        )
        self.scaling = self._autoscaling(config) if cfg.autoscaling else None

    def _role(self, config: EnvConfig, data: DataAccess, repository: ecr.IRepository) -> iam.Role:
        """What the serving container and SageMaker (image pull, model data, data capture) may do."""
        role = iam.Role(
            self,
            "ModelRole",
            role_name=config.serving_model_role_name,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{config.prefix} ranker endpoint (model data, data capture, online stores)",
        )
        repository.grant_pull(role)
        data.buckets["artifacts"].grant_read(role, "models/*")
        # Models the pipeline releases: the training job's output, s3://<artifacts>/pipeline/<run>/training/...
        data.buckets["artifacts"].grant_read(role, f"{PIPELINE_MODEL_DATA}*")
        if config.aws.endpoint.initial_model_data_url:  # else it is under artifacts/models/
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[_s3_object_arn(config.aws.endpoint.initial_model_data_url)]
                )
            )
        data.buckets["raw"].grant_put(role, f"{DATA_CAPTURE_PREFIX}/*")
        # the offline store's latest values: the item snapshot's seed at start (rankops.serving.snapshot_warm)
        feature_set = f"{config.settings.features.feature_set}/"
        data.buckets["features"].grant_read(role, f"{feature_set}*")
        data.grant_store_read(role)
        grant_sagemaker_logs(role, "Endpoints")
        grant_put_metrics(role)
        grant_vpc_access(role)
        acknowledge_wildcards(
            role,
            "Wildcards: model artifacts under artifacts/models/ and the pipeline's training outputs "
            "(artifacts/pipeline/<run>/training/), the offline store's feature set (read: the item "
            "snapshot's seed), data capture under raw/datacapture/ (object "
            "names are made by SageMaker), SageMaker's /aws/sagemaker/Endpoints* log groups, ECR's "
            "GetAuthorizationToken, SageMaker's documented VPC ENI actions and namespaced PutMetricData.",
            S3_GRANT_ACTIONS,
            KMS_GRANT_ACTIONS,
            lake_objects("artifacts", "models/"),
            lake_objects("artifacts", PIPELINE_MODEL_DATA),
            lake_objects("raw", f"{DATA_CAPTURE_PREFIX}/"),
            lake_objects("features", feature_set),
            r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints\*",
            NO_RESOURCE_TYPE,
        )
        return role

    def _autoscaling(self, config: EnvConfig) -> appscaling.ScalableTarget:
        cfg = config.aws.endpoint
        target = appscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{config.endpoint_name}/variant/{SERVING_VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=cfg.min_instances,
            max_capacity=cfg.max_instances,
        )
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=cfg.invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.seconds(cfg.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(cfg.scale_out_cooldown_seconds),
        )
        return target
