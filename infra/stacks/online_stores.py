"""Deployable unit: the online feature stores (Redis and DynamoDB)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.network import Network
from infra.constructs.online_stores import OnlineStores


class OnlineStoresStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvConfig, network: Network, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.stores = OnlineStores(
            self, "Stores", config=config, subnet_ids=network.subnet_ids, redis_sg=network.redis_sg
        )
        CfnOutput(
            self,
            "EntityStatsTable",
            value=self.stores.table.table_name,
            description="RANKOPS_ONLINE_STORE__DYNAMODB__TABLE",
        )
        CfnOutput(self, "RedisUrl", value=self.stores.redis_url, description="RANKOPS_ONLINE_STORE__REDIS__URL")
        CfnOutput(
            self,
            "RedisAuthSecretArn",
            value=self.stores.redis_secret.secret_arn,
            description="RANKOPS_ONLINE_STORE__REDIS__AUTH_SECRET_ARN (the Redis AUTH token)",
        )
