"""The endpoint emulator's batched data capture (``rankops.rehearse.capture_writer``) into the
capture destination the prod templates deploy, and every capture reader on those files: many lines
make few objects, a file never straddles an hour, and the readers find exactly what they find when
each invocation is its own object, with one GetObject per file."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rankops.feedback import store
from rankops.lake import Lake
from rankops.monitoring.data_capture import capture_key, capture_line, parse_line
from rankops.rehearse.capture_writer import CaptureWriter, hour_folder
from rankops.release import capture_outcomes, shadow_capture
from tests.deployed import REGION, deployed_world
from tests.moto_s3 import moto_s3

START = datetime(2026, 12, 1, 9, 55, tzinfo=UTC)
NEVER_S = 10_000_000.0  # a timer that does not fire during a test


@pytest.fixture(scope="module")
def prod(synthesized_env: Any) -> Any:
    return synthesized_env("prod")


@pytest.fixture
def capture(prod: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto (in process and as a server, one state) with prod's buckets from the templates; the
    endpoint's name and capture destination as its EndpointConfig deploys them."""
    with mock_aws(), contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.contextmanager(moto_s3)(monkeypatch))
        deployed = deployed_world(prod)
        config = deployed.properties("AWS::SageMaker::EndpointConfig")
        endpoint = deployed.properties("AWS::SageMaker::Endpoint")["EndpointName"]
        yield {
            "destination": config["DataCaptureConfig"]["DestinationS3Uri"].rstrip("/"),
            "endpoint": endpoint,
            "s3": boto3.client("s3", region_name=REGION),
        }


def objects(s3: Any, uri: str) -> dict[str, list[str]]:
    """Every capture object under ``uri``: key -> its lines."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            found[item["Key"]] = body.splitlines()
    return found


def line_at(when: datetime, n: int, score: float = 1.0) -> str:
    request = {"user_id": f"u-{n}", "candidates": [f"i-{n}-{k}" for k in range(4)]}
    answer = {"request_id": f"r-{n}", "ranking": [{"item_id": f"i-{n}-{k}", "score": score - k} for k in range(4)]}
    return capture_line(json.dumps(request).encode(), json.dumps(answer).encode(), inference_time=when)


def key_time(key: str) -> datetime:
    """The time a capture object's key names (``.../yyyy/mm/dd/hh/mm-ss-mmm-<id>.jsonl``)."""
    *_, y, mo, d, h, name = key.split("/")
    minute, second, milli, _ = name.split("-", 3)
    return datetime(int(y), int(mo), int(d), int(h), int(minute), int(second), int(milli) * 1000, tzinfo=UTC)


def test_many_lines_make_few_objects_that_never_straddle_an_hour(capture: dict[str, Any]) -> None:
    s3, destination, endpoint = capture["s3"], capture["destination"], capture["endpoint"]
    writer = CaptureWriter(s3, factor=1.0, flush_s=NEVER_S, max_lines=500)
    times = [START + timedelta(seconds=n) for n in range(1_200)]  # 09:55:00 -> 10:14:59
    for n, when in enumerate(times):
        writer.add(destination, endpoint, "champion", when, line_at(when, n))
    written = objects(s3, destination)
    assert sorted(len(lines) for lines in written.values()) == [300, 500], "09:55-09:59 closed; 500 of 10:xx"
    writer.close()
    written = objects(s3, destination)
    assert sorted(len(lines) for lines in written.values()) == [300, 400, 500]
    for key, lines in written.items():
        parsed = [parse_line(line, endpoint, "champion") for line in lines]
        assert key.startswith(f"{destination.split('/', 3)[3]}/{endpoint}/champion/")
        assert {hour_folder(p.inference_time) for p in parsed} == {hour_folder(key_time(key))}, key
        assert key_time(key).replace(microsecond=0) == parsed[0].inference_time, "named by its first line"
    assert sum(len(lines) for lines in written.values()) == len(times)


def test_the_timer_flushes_on_the_emulated_clock_and_close_flushes_the_rest(capture: dict[str, Any]) -> None:
    s3, destination, endpoint = capture["s3"], capture["destination"], capture["endpoint"]
    writer = CaptureWriter(s3, factor=0.01, flush_s=5.0)  # every 5 emulated seconds: 0.05 s real
    writer.add(destination, endpoint, "champion", START, line_at(START, 0))
    deadline = time.monotonic() + 10
    while not objects(s3, destination) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [len(lines) for lines in objects(s3, destination).values()] == [1], "written by the timer"
    late = CaptureWriter(s3, factor=1.0, flush_s=NEVER_S)
    late.add(destination, endpoint, "challenger", START, line_at(START, 1))
    assert len(objects(s3, destination)) == 1
    late.close()
    writer.close()
    assert len(objects(s3, destination)) == 2 and writer.flush() == 0


def test_concurrent_writers_lose_and_duplicate_nothing(capture: dict[str, Any]) -> None:
    s3, destination, endpoint = capture["s3"], capture["destination"], capture["endpoint"]
    writer = CaptureWriter(s3, factor=0.01, flush_s=2.0, max_lines=40)
    sent: list[str] = []

    def send(thread: int) -> None:
        for n in range(150):
            when = START + timedelta(seconds=2 * n)  # 09:55 -> 10:00: one hour change per thread
            line = line_at(when, thread * 1_000 + n)
            sent.append(json.loads(line)["eventMetadata"]["eventId"])
            writer.add(destination, endpoint, ("champion", "challenger")[thread % 2], when, line)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    written = objects(s3, destination)
    ids = [json.loads(line)["eventMetadata"]["eventId"] for lines in written.values() for line in lines]
    assert sorted(ids) == sorted(sent) and len(ids) == 900
    assert all(len(lines) <= 40 for lines in written.values()) and len(written) == writer.objects < 900
    for key, lines in written.items():
        folders = {hour_folder(parse_line(line, endpoint, "x").inference_time) for line in lines}
        assert folders == {hour_folder(key_time(key))}, key


def shadow_lines(n: int) -> list[tuple[str, datetime, str]]:
    """A shadow's capture across an hour change: each request answered by the champion and, as a
    copy, by the challenger with other scores; ``(variant, time, line)`` in time order."""
    out = []
    for r in range(n):
        when = START + timedelta(seconds=6 * r)  # 09:55 -> 10:10
        request = {"user_id": f"u-{r}", "candidates": [f"i-{r}-{k}" for k in range(5)]}
        for variant, sign in (("champion", 1.0), ("challenger", -1.0 if r % 4 == 0 else 1.0)):
            ranking = [{"item_id": f"i-{r}-{k}", "score": sign * (5.0 - k)} for k in range(5)]
            answer = {"request_id": f"r-{r}", "ranking": ranking, "model_version": "8", "variant": variant,
                      "policy": "deterministic", "propensities": [1.0] * 5}  # fmt: skip
            body = capture_line(json.dumps(request).encode(), json.dumps(answer).encode(), inference_time=when)
            out.append((variant, when, body))
    return out


def test_every_reader_reads_batched_files_as_one_object_per_invocation(capture: dict[str, Any]) -> None:
    """The same capture lines written the old way (an object per invocation) and batched: the
    shadow comparison, the canary's answers and the feedback reader (drift job, hourly run, off-policy
    job) read the same; the shadow reader gets each batched file once, and only its window's hours."""
    s3, endpoint = capture["s3"], capture["endpoint"]
    single, batched = f"{capture['destination']}/single", f"{capture['destination']}/batched"
    lines = shadow_lines(150)
    writer = CaptureWriter(s3, factor=1.0, flush_s=NEVER_S, max_lines=60)
    for variant, when, line in lines:
        bucket, key = capture_key(single, endpoint, variant, when).removeprefix("s3://").split("/", 1)
        s3.put_object(Bucket=bucket, Key=key, Body=f"{line}\n".encode())
        writer.add(batched, endpoint, variant, when, line)
    old = START - timedelta(hours=3)  # an old hour's file: outside every window below
    writer.add(batched, endpoint, "champion", old, line_at(old, 99))
    writer.close()
    assert len(objects(s3, batched)) == 7 and len(objects(s3, single)) == 300  # 50 + 60 + 40 (+ the old one)

    gets: list[str] = []
    s3.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: gets.append(params["Key"]))
    since, until = START + timedelta(minutes=4), START + timedelta(minutes=12)
    read = {
        layout: [shadow_capture.read_variant(s3, uri, endpoint, v, since) for v in ("champion", "challenger")]
        for layout, uri in (("single", single), ("batched", batched))
    }
    batched_gets = [k for k in gets if "/batched/" in k]
    assert len(batched_gets) == len(set(batched_gets)) and not any("/2026/12/01/06/" in k for k in batched_gets)

    def events(found: list[Any]) -> list[tuple[str, datetime, str]]:
        return sorted((i.event_id, i.inference_time, json.dumps(i.response, sort_keys=True)) for i in found)

    for one, many in zip(read["single"], read["batched"], strict=True):
        assert events(one[0]) == events(many[0]) and one[1] == many[1] == 0
    assert len(read["batched"][0][0]) == 110  # 09:59:00 -> 10:09:54, a request every 6 seconds
    compared = {k: shadow_capture.compare(shadow_capture.pair(v[0][0], v[1][0])) for k, v in read.items()}
    assert compared["single"] == compared["batched"] and compared["batched"]["requests"] == 110
    shown = {k: sorted(capture_outcomes.shown([*v[0][0], *v[1][0]])) for k, v in read.items()}
    assert shown["single"] == shown["batched"] and len(shown["batched"]) == 220

    lake = Lake.zone_reader("raw", capture["destination"].rsplit("/", 1)[0])
    tables = {
        k: store.read_capture(lake, uri, endpoint, since, until).sort_by([("request_id", "ascending"),
                                                                          ("variant", "ascending")])
        for k, uri in (("single", single), ("batched", batched))
    }  # fmt: skip
    assert tables["single"].num_rows == 2 * 80 and tables["single"].equals(tables["batched"])
