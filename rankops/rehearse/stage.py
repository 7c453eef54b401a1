"""What exists before the pipeline's first run in AWS, staged in a rehearsal's world.

In a real account a user has, before ``cdk deploy`` of the serving stack: logged traffic in the raw
bucket, the feature pipeline's output (offline features and the online stores), and the bootstrap
``model.tar.gz`` at ``aws.endpoint.initial_model_data_url`` that CloudFormation's endpoint starts
on. The rehearsal stages the same: a synthetic marketplace written to the S3 lake, features built
and materialized with the environment's settings (S3, DynamoDB, Redis of the world), a bootstrap
model trained into a *separate* registry (the world's registry stays empty, as before a first
release), and the template's Model, EndpointConfig and Endpoint created through the emulator's API.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from rankops.config import Settings, load_settings
from rankops.errors import RankopsError
from rankops.rehearse.world import REPO, World

BOOTSTRAP = "bootstrap"


def world_settings(world: World, home: Path) -> Settings:
    """The environment's settings as the deployed serving model sees them (its template environment),
    with the world's MLflow store: what the jobs and the endpoint use."""
    (model,) = world.sagemaker["AWS::SageMaker::Model"]
    environ = {**model["PrimaryContainer"].get("Environment", {}), "RANKOPS_MLFLOW__TRACKING_URI": world.mlflow_uri}
    return load_settings(env=world.env, home=home, config_file=REPO / "rankops.toml", environ=environ)


def seed(
    settings: Settings, spark: Any, events: int, days: int = 3, seed: int = 21, say: Callable[[str], None] = print
) -> None:
    """Logged traffic in the raw bucket, features built offline and materialized online (each step said)."""
    from rankops.features import offline
    from rankops.features.materialize import materialize
    from rankops.lake import Lake
    from rankops.synthetic import MarketplaceSpec, generate, write_marketplace

    lake = Lake.from_settings(settings)
    write_marketplace(lake, generate(MarketplaceSpec(events=events, days=days, seed=seed, start=date(2026, 11, 1))))
    say("stage: marketplace in the raw bucket; building features (Spark, the S3 lake)")
    offline.build(spark, lake, settings)
    say("stage: features built; materializing them into Redis and DynamoDB")
    materialize(lake, settings)


def bootstrap_archive(settings: Settings, spark: Any, folder: Path) -> Path:
    """The bootstrap ``model.tar.gz``: a model trained on the staged lake and registered in a
    registry of its own (``folder``), so the world's registry has no champion yet."""
    from rankops.lake import Lake
    from rankops.training.workflow import train_from_lake

    mlflow = settings.mlflow.model_copy(
        update={"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}", "artifact_root": (folder / "artifacts").as_uri()}
    )
    own = settings.model_copy(update={"home": folder, "mlflow": mlflow})
    folder.mkdir(parents=True, exist_ok=True)
    report = train_from_lake(spark, Lake.from_settings(settings), own, alias="champion")
    models = [p.parent for p in Path(report.job_dir).rglob("VERSION") if (p.parent / "fallback").is_dir()]
    if len(models) != 1:
        raise RankopsError(f"the bootstrap training left {len(models)} model folders in {report.job_dir}")
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(models[0].iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def bootstrap_endpoint(world: World, archive: Path, emulator: Any) -> str:
    """Upload the bootstrap archive where the template's Model expects it and create the template's
    Model, EndpointConfig and Endpoint through the emulator (CloudFormation's part); waits until
    the endpoint is in service and returns its name."""
    (model,), (config,), (endpoint,) = (
        world.sagemaker[f"AWS::SageMaker::{t}"] for t in ("Model", "EndpointConfig", "Endpoint")
    )
    bucket, _, key = model["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://").partition("/")
    world.client("s3").upload_file(str(archive), bucket, key)
    import boto3

    sm = boto3.client("sagemaker")  # the emulator ($AWS_ENDPOINT_URL_SAGEMAKER), not moto
    sm.create_model(**{k: v for k, v in model.items() if k != "Tags"})
    sm.create_endpoint_config(**config)
    name = str(endpoint["EndpointName"])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=endpoint["EndpointConfigName"])
    status = emulator.wait_for(name)
    if status != "InService":
        raise RankopsError(f"the bootstrap endpoint {name} ended {status}, not InService")
    return name
