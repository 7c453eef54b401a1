"""Processing job: logged requests -> labelled, point-in-time rows -> time-split channels."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from rankops.features.offline import dataset_name
from rankops.training.dataset import build_training_frame
from rankops.training.manifest import MANIFEST_FILE
from rankops.training.processing import CHANNELS, ProcessedDataset, process_frame, write_processed

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from rankops.config import Settings
    from rankops.lake import Lake
    from rankops.sagemaker_contract import ProcessingPaths

MANIFEST_OUTPUT = "manifest"


def manifest_uri(lake: Lake, dataset_hash: str) -> str:
    """Where the processing job publishes a dataset's manifest in the artifacts zone."""
    return lake.uri("artifacts", "datasets", dataset_hash, MANIFEST_FILE)


def run(
    settings: Settings,
    paths: ProcessingPaths,
    *,
    spark: SparkSession,
    lake: Lake,
    snapshot: datetime | None = None,
) -> ProcessedDataset:
    """Build the training frame from the lake (requests before ``snapshot``, if given), split
    it, write the channels (``output/{train,validation,holdout}``) and the manifest
    (``output/manifest`` and the lake's artifacts zone)."""
    frame = build_training_frame(spark, lake, settings, until=snapshot)
    source = {
        "events": lake.uri("raw", "events"),
        "features": lake.uri("features", dataset_name(settings, "item")),
        "snapshot": snapshot.isoformat() if snapshot is not None else "latest",
    }
    dataset = write_processed(process_frame(frame, settings, source), {c: paths.output(c) for c in CHANNELS})
    out = paths.output(MANIFEST_OUTPUT)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).write_text(json.dumps(dataset.manifest, indent=2, sort_keys=True))
    lake.write_json(manifest_uri(lake, dataset.dataset_hash), dataset.manifest)
    return dataset
