"""The data lake: one KMS key, one bucket per zone, one access-log bucket.

Every zone bucket is KMS-encrypted, versioned, private, TLS-only and logs access;
lifecycle rules keep storage costs bounded. The Parquet layout inside the buckets
is documented in docs/lake.md (``dt=/hour=`` partitions with ``_SUCCESS`` manifests);
:mod:`infra.constructs.lake_catalog` registers the raw datasets in Glue for Athena.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import EnvConfig
from infra.nag import acknowledge

ZONES = ("raw", "curated", "features", "artifacts")


class DataLake(Construct):
    """Buckets for the lake's zones, exposed as ``buckets[zone]``."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig) -> None:
        super().__init__(scope, construct_id)
        aws = config.settings.aws
        removal = config.removal_policy
        self.key = kms.Key(
            self,
            "LakeKey",
            alias=f"alias/{config.prefix}-lake",
            enable_key_rotation=True,
            description=f"{config.prefix} data lake encryption",
            removal_policy=removal,
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot use SSE-KMS
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=Duration.days(aws.log_retention_days * 3),
                    noncurrent_version_expiration=Duration.days(7),
                )
            ],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log target bucket; logging it to itself would loop.",
        )
        self.buckets: dict[str, s3.Bucket] = {}
        for zone in ZONES:
            self.buckets[zone] = s3.Bucket(
                self,
                f"{zone.capitalize()}Bucket",
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{zone}/",
                removal_policy=removal,
                lifecycle_rules=self._lifecycle(zone, aws.raw_expiry_days),
            )

    @staticmethod
    def _lifecycle(zone: str, raw_expiry_days: int) -> list[s3.LifecycleRule]:
        rules = [
            s3.LifecycleRule(
                id="housekeeping",
                abort_incomplete_multipart_upload_after=Duration.days(7),
                noncurrent_version_expiration=Duration.days(30),
            )
        ]
        if zone == "raw":
            rules.append(
                s3.LifecycleRule(
                    id="raw-tiering",
                    expiration=Duration.days(raw_expiry_days),
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(30)
                        )
                    ],
                )
            )
        if zone in ("curated", "features"):
            rules.append(s3.LifecycleRule(id="staging-cleanup", prefix="_staging/", expiration=Duration.days(2)))
        return rules
