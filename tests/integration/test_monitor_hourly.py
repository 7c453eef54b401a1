"""The hourly monitoring run as deployed: the starter Lambda with its template environment against
moto's EMR Serverless (the job it starts, once per hour), and the job's logic on a small world:
answers captured in (moto) S3 where the template says the endpoint captures them, outcome events in
the raw zone, a drift reference in the artifacts zone -> ``FeatureDriftPSI`` and ``RevenueProxy``
in (moto) CloudWatch where the templates' alarms watch them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emrserverless.models import emrserverless_backends

from lambdas.start_monitor_job import handler as starter
from rankops.features import registry
from rankops.features.offline import read_manifest
from rankops.feedback import store
from rankops.lake import Lake
from rankops.monitoring import drift_report as dr
from rankops.monitoring.data_capture import capture_key, capture_line
from rankops.monitoring.drift import CONTEXT_CATEGORY, reference_histograms
from rankops.monitoring.hourly import run_hour
from tests.deployed import REGION, deployed_world, lambda_environment
from tests.integration.test_drift import traffic
from tests.moto_s3 import moto_s3

STARTER = "lambdas.start_monitor_job.handler.handler"


@pytest.fixture(scope="module")
def dev(synthesized_env: Any) -> Any:
    return synthesized_env("dev")


@pytest.fixture
def deployed(dev: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto (in process and as a server, one state) with the environment's buckets, keys and roles
    from the templates, the feature application in EMR Serverless, and the starter's environment
    resolved as deployed."""
    with mock_aws(), contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.contextmanager(moto_s3)(monkeypatch))
        world = deployed_world(dev)
        emr = boto3.client("emr-serverless", region_name=REGION)
        ((app_stack, app_id_logical, app),) = world.resolver.resources("AWS::EMRServerless::Application")
        app_id = emr.create_application(name=app["Properties"]["Name"], releaseLabel="emr-7.9.0", type="SPARK")[
            "applicationId"
        ]
        emrserverless_backends[DEFAULT_ACCOUNT_ID][REGION].job_runs.setdefault(app_id, [])  # moto: [] not 404
        world.resolver.assign(app_stack, app_id_logical, "ApplicationId", app_id)
        environment = lambda_environment(dev.template("feature-compute"), STARTER, world, "feature-compute")
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        arguments = json.loads(environment["ENTRY_POINT_ARGUMENTS"])  # flag, value pairs
        pairs = dict(zip(arguments[::2], arguments[1::2], strict=True))
        yield {"app_id": app_id, "environment": environment, "arguments": pairs}


def runs_of(app_id: str) -> list[dict[str, Any]]:
    return boto3.client("emr-serverless", region_name=REGION).list_job_runs(applicationId=app_id)["jobRuns"]


def bucket_exists(uri: str) -> bool:
    boto3.client("s3", region_name=REGION).head_bucket(Bucket=uri.removeprefix("s3://").split("/")[0])
    return True


def test_the_starter_starts_the_closed_hours_run_once(deployed: dict[str, Any], dev: Any) -> None:
    app_id = deployed["app_id"]
    first = starter.handler({"id": "e-1", "time": "2026-12-01T10:05:00Z"}, None)
    assert first == {**first, "started": True, "name": "monitor-20261201T0900", "hour": "2026-12-01T09:00:00+00:00"}
    (run,) = runs_of(app_id)
    job = boto3.client("emr-serverless", region_name=REGION).get_job_run(applicationId=app_id, jobRunId=run["id"])
    submit = job["jobRun"]["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"].endswith(f"/emr/{dev.config.image_tag}/monitor.py") and bucket_exists(
        submit["entryPoint"]
    )  # the deployed artifacts bucket
    arguments = submit["entryPointArguments"]
    assert arguments[-2:] == ["--hour", "2026-12-01T09:00:00+00:00"]
    capture = deployed["arguments"]["--capture-uri"]
    assert capture.endswith("/datacapture") and bucket_exists(capture)  # the deployed raw bucket
    assert arguments[arguments.index("--endpoint") + 1] == dev.config.endpoint_name
    assert job["jobRun"]["executionRole"] == deployed["environment"]["JOB_ROLE_ARN"]

    again = starter.handler({"id": "e-1", "time": "2026-12-01T10:05:00Z"}, None)  # EventBridge redelivers
    assert again["started"] is False and again["job_run_id"] == run["id"]
    for backend_run in emrserverless_backends[DEFAULT_ACCOUNT_ID][REGION].job_runs[app_id]:
        backend_run.state = "SUCCESS"
    late = starter.handler({"id": "e-1b", "time": "2026-12-01T10:40:00Z"}, None)  # a retry within the hour
    assert late["started"] is False and len(runs_of(app_id)) == 1
    next_hour = starter.handler({"id": "e-2", "time": "2026-12-01T11:05:00Z"}, None)
    assert next_hour["started"] is True and next_hour["name"] == "monitor-20261201T1000"
    assert len(runs_of(app_id)) == 2


def alarm_metrics(dev: Any) -> dict[tuple[str, str], list[dict[str, str]]]:
    """(namespace, metric) -> dimensions of every metric a monitoring-stack alarm watches (plain
    alarms, and the metric of an anomaly band)."""
    found = {}
    for alarm in dev.resources("monitoring", "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        metrics = [props] if "MetricName" in props else [m["MetricStat"]["Metric"] for m in props.get("Metrics", [])
                                                          if "MetricStat" in m]  # fmt: skip
        for m in metrics:
            found[(m["Namespace"], m["MetricName"])] = m["Dimensions"]
    return found


def captured(rows: list[dict[str, Any]]) -> list[tuple[datetime, str]]:
    """Each logged answer as SageMaker captures it (the champion variant's request and response)."""
    lines = []
    for r in rows:
        request = {"user_id": r["user_id"], "context": json.loads(r["context"]), "candidates": list(r["items"])}
        response = {"ranking": [{"item_id": i, "score": 0.0} for i in r["items"]], "request_id": r["request_id"],
                    "model_version": "1", "variant": "champion"}  # fmt: skip
        line = capture_line(orjson.dumps(request), orjson.dumps(response), inference_time=r["ts"])
        lines.append((r["ts"], line))
    return lines


def test_one_hour_of_capture_publishes_drift_and_revenue_where_the_alarms_watch(
    deployed: dict[str, Any], dev: Any, market: Any, spark: Any
) -> None:
    raw = deployed["arguments"]["--capture-uri"].rsplit("/", 1)[0]  # the capture's bucket is the raw zone's
    artifacts = deployed["environment"]["ENTRY_POINT"].split("/emr/")[0]
    lake = Lake({"raw": raw, "curated": market.lake.uri("curated"), "features": market.lake.uri("features"),
                 "artifacts": artifacts})  # fmt: skip
    settings = market.settings.model_copy(update={"env": "dev"})
    items = market.lake.read("raw", "items", columns=["item_id", "category"]).to_pandas().drop_duplicates("item_id")
    end = datetime.fromisoformat(read_manifest(market.lake, market.settings)["published_through"])
    hour = pd.Timestamp(end).floor("h").to_pydatetime() - timedelta(hours=1)

    # the reference of the newest processed dataset: steady traffic, as the processing step summarizes it
    steady = dr.shown_rows(store.to_table(traffic(items, hour - timedelta(hours=4), 300, seed=1)))
    frame = dr.served_features(market.lake, market.settings, steady, hour)
    reference = reference_histograms(frame, registry.model_features(), [CONTEXT_CATEGORY])
    lake.write_json(lake.uri("artifacts", "datasets", "d1", "manifest.json"),
                    {"dataset_hash": "d1", "created_at": "2026-12-01T00:00:00", "reference": reference})  # fmt: skip

    # the hour's answers, a campaign moving every search to one category, as the endpoint captures them
    campaign = str(items["category"].value_counts().index[0])
    answers = traffic(items, hour, 150, seed=3, only=campaign)
    s3 = boto3.client("s3", region_name=REGION)
    for ts, line in captured(answers):
        bucket, key = capture_key(deployed["arguments"]["--capture-uri"], dev.config.endpoint_name, "champion",
                                  ts + timedelta(seconds=30)).removeprefix("s3://").split("/", 1)  # fmt: skip
        s3.put_object(Bucket=bucket, Key=key, Body=line.encode() + b"\n")
    sold = [a["request_id"] for a in answers[:2]]
    store.write_outcomes(lake, pd.DataFrame({"request_id": [*sold, sold[0]], "position": [1, 2, 1],
                                             "outcome": ["purchase", "purchase", "click"], "value": [30.0, 20.0, 0.0],
                                             "ts": [hour + timedelta(minutes=50)] * 3}))  # fmt: skip
    lake.write_partition("raw", "items", {"dt": "2026-12-01"}, pa.table({"item_id": items["item_id"].tolist()}))

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    namespace = deployed["arguments"]["--metrics-namespace"]
    result = run_hour(settings, lake, hour, endpoint=deployed["arguments"]["--endpoint"],
                      capture_uri=deployed["arguments"]["--capture-uri"], spark=spark, cloudwatch=cloudwatch,
                      namespace=namespace)  # fmt: skip
    assert result["errors"] == {} and result["requests"] == len(answers), result
    drift = result["drift"]
    assert drift["Value"] > settings.aws.alarms.feature_drift_psi and CONTEXT_CATEGORY in drift["drifted"], drift

    watched = alarm_metrics(dev)
    for name, statistic, expected in (("FeatureDriftPSI", "Maximum", result["drift"]["Value"]),
                                      ("RevenueProxy", "Sum", 50.0)):  # fmt: skip
        dimensions = watched[(namespace, name)]  # a template alarm watches what the job published
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=dimensions, StartTime=hour,
            EndTime=hour + timedelta(hours=3), Period=3600, Statistics=[statistic],
        )["Datapoints"]  # fmt: skip
        assert [p[statistic] for p in points] == [pytest.approx(expected)], (name, points)
    assert result["online"]["Value"] == pytest.approx(50.0)


def test_an_hour_without_captured_answers_publishes_nothing(deployed: dict[str, Any], market: Any) -> None:
    raw = deployed["arguments"]["--capture-uri"].rsplit("/", 1)[0]
    lake = Lake({"raw": raw, "curated": market.lake.uri("curated"), "features": market.lake.uri("features"),
                 "artifacts": market.lake.uri("artifacts")})  # fmt: skip
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    hour = datetime.fromisoformat("2026-12-01T09:00:00+00:00")
    result = run_hour(market.settings, lake, hour, endpoint="rankops-dev-ranker",
                      capture_uri=deployed["arguments"]["--capture-uri"], spark=None, cloudwatch=cloudwatch,
                      namespace="rankops")  # fmt: skip
    assert result["requests"] == 0 and "no captured answers" in result["skipped"] and result["errors"] == {}
    assert cloudwatch.list_metrics(Namespace="rankops")["Metrics"] == []


def test_the_entry_point_runs_with_the_starters_arguments(
    deployed: dict[str, Any], market: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``emr_jobs/monitor.py`` with the arguments the starter passes (template's, plus ``--hour``): an
    hour without captured answers is judged, publishes nothing, and the job succeeds."""
    from emr_jobs import monitor

    raw = deployed["arguments"]["--capture-uri"].rsplit("/", 1)[0]
    zones = {"RAW": raw, **{z.upper(): market.lake.uri(z) for z in ("curated", "features", "artifacts")}}
    for zone, uri in zones.items():
        monkeypatch.setenv(f"RANKOPS_LAKE__{zone}", uri)
    monkeypatch.setenv("RANKOPS_SPARK__MASTER", "local[2]")
    argv = [*json.loads(deployed["environment"]["ENTRY_POINT_ARGUMENTS"]), "--hour", "2026-12-01T09:00:00+00:00"]
    assert monitor.main(argv) == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["hour"] == "2026-12-01T09:00:00+00:00" and printed["requests"] == 0 and printed["drift"] is None
    assert boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace="rankops")["Metrics"] == []
