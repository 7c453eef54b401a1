"""The endpoint emulator's metrics: queued off the request path, sent in batches, none lost."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from rankops.rehearse.metric_publisher import MAX_DATUMS, MetricPublisher

pytestmark = pytest.mark.integration


def _datum(value: float, when: datetime) -> dict[str, object]:
    dims = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "champion"}]
    return {"MetricName": "Invocations", "Dimensions": dims, "Value": value, "Unit": "None", "Timestamp": when}


def _sum(cw: object, start: datetime) -> tuple[float, float]:
    points = cw.get_metric_statistics(  # type: ignore[attr-defined]
        Namespace="AWS/SageMaker", MetricName="Invocations", StartTime=start, EndTime=start + timedelta(hours=1),
        Period=3600, Statistics=["Sum", "SampleCount"],
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "champion"}],
    )["Datapoints"]  # fmt: skip
    return (points[0]["Sum"], points[0]["SampleCount"]) if points else (0.0, 0.0)


def test_datums_from_many_threads_arrive_each_with_its_value_after_a_flush(aws: None) -> None:
    cw = boto3.client("cloudwatch", region_name="eu-west-1")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    publisher = MetricPublisher(cw, factor=1.0, flush_s=3600)  # no timed send during the test
    try:
        per_thread = (MAX_DATUMS + 200) // 4

        def send() -> None:
            for _ in range(per_thread):
                publisher.put("AWS/SageMaker", [_datum(1.0, start + timedelta(minutes=5))])

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _sum(cw, start) == (0.0, 0.0), "queued, not yet sent"
        publisher.flush()  # more than one request's worth: split at MAX_DATUMS
        assert _sum(cw, start) == (4.0 * per_thread, 4.0 * per_thread)
    finally:
        publisher.close()


def test_the_timer_sends_on_the_emulated_clock_and_close_sends_the_rest(aws: None) -> None:
    cw = boto3.client("cloudwatch", region_name="eu-west-1")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    sent = threading.Event()
    original = cw.put_metric_data

    def spy(**kwargs: object) -> object:
        answer = original(**kwargs)
        sent.set()
        return answer

    cw.put_metric_data = spy
    publisher = MetricPublisher(cw, factor=0.01, flush_s=10.0)  # every 0.1 s real
    publisher.put("AWS/SageMaker", [_datum(2.0, start + timedelta(minutes=1))])
    assert sent.wait(timeout=30), "the timer sent the queued datum"
    assert _sum(cw, start) == (2.0, 1.0)
    publisher.put("AWS/SageMaker", [_datum(3.0, start + timedelta(minutes=2))])
    publisher.close()
    assert _sum(cw, start) == (5.0, 2.0)
