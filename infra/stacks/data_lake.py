"""Deployable unit: the data lake (long-lived; other stacks reference its buckets)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.data_lake import DataLake


class DataLakeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.lake = DataLake(self, "Lake", config=config)
        for zone, bucket in self.lake.buckets.items():
            CfnOutput(
                self,
                f"{zone.capitalize()}BucketName",
                value=bucket.bucket_name,
                description=f"lake zone '{zone}' (RANKOPS_LAKE__{zone.upper()}=s3://<this>)",
            )
