"""Build the stacks of one environment into a CDK app, then apply tags and cdk-nag once.

Stacks are deployable units in dependency order (``cdk deploy --all`` follows it):

    data-lake, network, alerts          long-lived foundations
    online-stores, image, mlflow        stores, the image build, the tracking server
    feature-compute                     EMR Serverless + hourly schedule, Kinesis + streaming run
    pipeline                            state machine, its Lambdas and triggers
    serving                             the endpoint (needs the image and a first model)
    monitoring                          remaining alarms and the dashboard
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack, Tags, Validations

from infra.config import EnvConfig, env_config
from infra.data_access import DataAccess
from infra.log_encryption import encrypt_log_groups
from infra.nag import ReviewedAwsSolutionsChecks
from infra.stacks.alerts import AlertsStack
from infra.stacks.data_lake import DataLakeStack
from infra.stacks.feature_compute import FeatureComputeStack
from infra.stacks.image import ImageStack
from infra.stacks.mlflow import MlflowStack
from infra.stacks.monitoring import MonitoringStack
from infra.stacks.network import NetworkStack
from infra.stacks.online_stores import OnlineStoresStack
from infra.stacks.pipeline import PipelineStack
from infra.stacks.serving import ServingStack

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_context(env: str) -> dict[str, Any]:
    """cdk.json's context (feature flags, AZs) with ``env`` set: what ``cdk synth -c env=...``
    gives ``app.py``, for tests and scripts that build the app in-process."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return {**context, "env": env}


def build(app: App, env_name: str | None = None) -> list[Stack]:
    """All stacks of the environment named by ``env_name`` or the ``env`` context."""
    config: EnvConfig = env_config(env_name or app.node.try_get_context("env"))
    aws = config.aws
    common: dict[str, Any] = {
        "config": config,
        "env": Environment(account=aws.account, region=aws.region),
        # an environment whose data is retained (prod) cannot be deleted by a stray `cdk destroy`
        "termination_protection": config.retain,
    }
    p = config.prefix

    lake = DataLakeStack(app, f"{p}-data-lake", description=f"{p}: data lake (S3 zones, KMS, Glue)", **common)
    network = NetworkStack(app, f"{p}-network", description=f"{p}: VPC, endpoints, security groups", **common)
    alerts = AlertsStack(app, f"{p}-alerts", description=f"{p}: P1/P2, failure and approval topics", **common)
    stores = OnlineStoresStack(
        app, f"{p}-online-stores", network=network.network, description=f"{p}: Redis and DynamoDB", **common
    )
    buckets = lake.lake.buckets
    image = ImageStack(
        app, f"{p}-image", artifacts=buckets["artifacts"], description=f"{p}: ECR and CodeBuild", **common
    )
    mlflow = MlflowStack(
        app, f"{p}-mlflow", artifacts=buckets["artifacts"], description=f"{p}: managed MLflow", **common
    )
    data = DataAccess(
        buckets=buckets,
        table=stores.stores.table,
        redis_url=stores.stores.redis_url,
        redis_secret=stores.stores.redis_secret,
    )
    topics = alerts.alerts.topics
    features = FeatureComputeStack(
        app,
        f"{p}-feature-compute",
        data=data,
        network=network.network,
        repository=image.build.emr_repository,
        failures=topics["failures"],
        alarms=topics["p2"],
        description=f"{p}: EMR Serverless feature job, hourly; streaming features (Kinesis)",
        **common,
    )
    pipeline = PipelineStack(
        app,
        f"{p}-pipeline",
        data=data,
        network=network.network,
        repository=image.build.repository,
        image_uri=image.build.image_uri,
        mlflow_arn=mlflow.mlflow.arn,
        features=features.compute,
        topics=dict(topics),
        description=f"{p}: retraining state machine and triggers",
        **common,
    )
    serving = ServingStack(
        app,
        f"{p}-serving",
        data=data,
        lake_key=lake.lake.key,
        network=network.network,
        repository=image.build.repository,
        p1=topics["p1"],
        description=f"{p}: SageMaker endpoint (blue/green, auto rollback, autoscaling)",
        **common,
    )
    monitoring = MonitoringStack(
        app, f"{p}-monitoring", p1=topics["p1"], p2=topics["p2"], description=f"{p}: alarms, dashboard", **common
    )
    monitoring.node.add_dependency(serving)  # the dashboard shows the endpoint's alarms
    monitoring.node.add_dependency(pipeline)  # the pipeline-failure alarm watches the state machine

    stacks: list[Stack] = [lake, network, alerts, stores, image, mlflow, features, pipeline, serving, monitoring]
    for stack in stacks:
        encrypt_log_groups(stack, config)
    for key, value in config.tags.items():
        Tags.of(app).add(key, value)
    Validations.of(app).add_plugins(ReviewedAwsSolutionsChecks(app))
    return stacks
