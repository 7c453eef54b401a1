"""Deployable unit: the data lake (long-lived; other stacks reference its buckets and key)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.data_lake import DataLake
from infra.constructs.lake_catalog import LakeCatalog


class DataLakeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.lake = DataLake(self, "Lake", config=config)
        self.catalog = LakeCatalog(self, "Catalog", config=config, raw=self.lake.buckets["raw"])
        for zone, bucket in self.lake.buckets.items():
            CfnOutput(
                self,
                f"{zone.capitalize()}BucketName",
                value=bucket.bucket_name,
                description=f"lake zone '{zone}' (RANKOPS_LAKE__{zone.upper()}=s3://<this>)",
            )
        CfnOutput(self, "AccessLogsBucketName", value=self.lake.access_logs.bucket_name)
        CfnOutput(self, "GlueDatabase", value=self.catalog.database_name, description="Athena/Glue database (raw zone)")
