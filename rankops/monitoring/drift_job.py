"""The drift job in both worlds: which answers it judges, and where its figure goes.

Locally the served answers are the lake's feedback log; in AWS they are the endpoint's SageMaker
data capture, read by the one feedback reader (:func:`rankops.feedback.store.read_capture`) into
the same table. ``rankops drift`` (with ``--endpoint`` in AWS) and the rehearsal's
``retrain-trigger`` scenario run these same functions, so the rehearsal proves the path that
publishes ``FeatureDriftPSI`` in AWS, not a copy of it.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rankops.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

    from rankops.config import Settings
    from rankops.lake import Lake

NAMESPACE_VARIABLE = "METRICS_NAMESPACE"  # the deployed functions' variable (infra: the alarms' namespace)
DEFAULT_NAMESPACE = "rankops"


def metrics_namespace() -> str:
    """The CloudWatch namespace the custom metrics go to (``$METRICS_NAMESPACE``, else ``rankops``)."""
    return os.environ.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE


def capture_destination(sagemaker: Any, endpoint: str) -> str:
    """Where ``endpoint`` writes its data capture (its live endpoint config's ``DestinationS3Uri``)."""
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    capture = config.get("DataCaptureConfig") or {}
    if not capture.get("DestinationS3Uri") or capture.get("EnableCapture") is False:
        raise DataError(f"endpoint {endpoint} (config {config_name}) captures no data: no served answers to judge")
    return str(capture["DestinationS3Uri"])


def served(
    lake: Lake,
    since: datetime,
    until: datetime,
    *,
    endpoint: str | None = None,
    sagemaker: Any = None,
    destination: str | None = None,
) -> pa.Table:
    """The answers served in ``[since, until)``: the lake's feedback log, or with ``endpoint`` that
    SageMaker endpoint's data capture (lines that do not parse are quarantined by the reader). The
    capture's ``destination`` is the endpoint's live config's unless given (the hourly job in AWS is
    handed the one the serving stack configures, so it needs no SageMaker API)."""
    from rankops.feedback import store

    if endpoint is None:
        return store.read(lake, since, until)
    if destination is None:
        if sagemaker is None:
            import boto3

            sagemaker = boto3.client("sagemaker")
        destination = capture_destination(sagemaker, endpoint)
    return store.read_capture(lake, destination, endpoint, since, until)


def drift_of(
    settings: Settings,
    lake: Lake,
    feedback: pa.Table,
    since: datetime,
    until: datetime,
    dataset: str | None = None,
    *,
    score_kl: bool = True,
) -> dict[str, Any]:
    """The drift report of ``feedback`` against the reference of ``dataset`` (default: the newest
    processed dataset), with each served model version's score KL unless ``score_kl`` is off (its
    references live in MLflow, which the hourly EMR job does not reach); a window without traffic is
    an error that says so."""
    from rankops.monitoring import drift_report as dr
    from rankops.monitoring.score_drift import load_references

    dr.require_traffic(feedback, since, until)  # before looking for a reference: say what is missing first
    versions = sorted({v for v in feedback["model_version"].to_pylist() if v is not None})
    references = load_references(settings, versions) if score_kl else None
    manifest = dr.reference_manifest(lake, dataset)
    return dr.drift_report(lake, settings, manifest, feedback, since, until, references)
