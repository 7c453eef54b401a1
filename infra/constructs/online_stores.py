"""The online feature stores: ElastiCache Redis (hot item features) and DynamoDB (entity stats).

Redis is a replication group (not Serverless: one small node costs a fraction of
Serverless's minimum and the key space is small and bounded) with TLS in transit,
KMS at rest, an AUTH token kept in Secrets Manager, a non-default port, the server parameters
the store expects (``SERVER_PARAMETERS``: a version's hash expiring is freed in the background), and
in multi-AZ environments a replica in another AZ with automatic failover. DynamoDB is
on-demand with point-in-time recovery and a customer-managed KMS key; items are
addressed by the string keys ``pk`` and ``sk`` and may expire through ``expires_at``.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import EnvConfig
from infra.nag import acknowledge
from rankops.features.online.redis import SERVER_PARAMETERS


class OnlineStores(Construct):
    """Exposes ``table``, ``redis`` (the replication group), ``redis_secret`` and ``key``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        subnet_ids: list[str],
        redis_sg: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        aws = config.aws
        self.key = kms.Key(
            self,
            "StoresKey",
            alias=f"alias/{config.prefix}-online-stores",
            enable_key_rotation=True,
            description=f"{config.prefix} online feature stores",
            removal_policy=config.removal_policy,
        )
        self.table = dynamodb.Table(
            self,
            "EntityStats",
            table_name=config.name_of("entity-stats"),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            deletion_protection=config.retain,
            removal_policy=config.removal_policy,
        )
        self.redis_secret = secretsmanager.Secret(
            self,
            "RedisAuth",
            description=f"{config.prefix} Redis AUTH token",
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=64
            ),  # AUTH tokens allow printable ASCII except @ " / ; alphanumerics are always valid
            removal_policy=config.removal_policy,
        )
        acknowledge(
            self.redis_secret,
            "AwsSolutions-SMG4",
            "Rotating a Redis AUTH token needs a coordinated ModifyReplicationGroup (ROTATE, new secret value, "
            "readers replaced, then SET); it is the runbook in docs/operations.md 'Rotating the Redis AUTH token', "
            "not a Secrets Manager rotation Lambda.",
        )
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "RedisSubnets",
            description=f"{config.prefix} Redis private subnets",
            subnet_ids=subnet_ids,
        )
        slow_log = logs.LogGroup(
            self, "RedisSlowLog", retention=config.log_retention, removal_policy=config.removal_policy
        )
        parameters = elasticache.CfnParameterGroup(
            self,
            "RedisParameters",
            cache_parameter_group_family=f"redis{aws.redis.engine_version.split('.')[0]}",
            description=f"{config.prefix} Redis: what the online store expects of its server",
            properties=dict(SERVER_PARAMETERS),
        )
        failover = aws.redis.replicas > 0
        self.redis = elasticache.CfnReplicationGroup(
            self,
            "Redis",
            replication_group_description=f"{config.prefix} online feature store",
            engine="redis",
            engine_version=aws.redis.engine_version,
            cache_node_type=aws.redis.node_type,
            num_node_groups=1,
            replicas_per_node_group=aws.redis.replicas,
            automatic_failover_enabled=failover,
            multi_az_enabled=aws.multi_az and failover,
            port=aws.redis.port,
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.key_arn,
            transit_encryption_enabled=True,
            auth_token=self.redis_secret.secret_value.unsafe_unwrap(),  # a dynamic reference, not the value
            cache_subnet_group_name=subnet_group.ref,
            cache_parameter_group_name=parameters.ref,
            security_group_ids=[redis_sg.security_group_id],
            snapshot_retention_limit=aws.redis.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            log_delivery_configurations=[
                elasticache.CfnReplicationGroup.LogDeliveryConfigurationRequestProperty(
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                    destination_details=elasticache.CfnReplicationGroup.DestinationDetailsProperty(
                        cloud_watch_logs_details=elasticache.CfnReplicationGroup.CloudWatchLogsDestinationDetailsProperty(
                            log_group=slow_log.log_group_name
                        )
                    ),
                )
            ],
        )
        if not (aws.multi_az and failover):
            acknowledge(
                self.redis,
                "AwsSolutions-AEC4",
                f"{config.name} is a single-AZ environment (aws.multi_az=false) to save cost; the store is a "
                "cache rebuilt by materialization, and prod runs multi-AZ with automatic failover.",
            )

    @property
    def redis_url(self) -> str:
        """``rediss://host:port/0`` (TLS); the AUTH token comes from ``redis_secret``."""
        return f"rediss://{self.redis.attr_primary_end_point_address}:{self.redis.attr_primary_end_point_port}/0"
