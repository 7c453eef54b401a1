"""SageMaker's data capture format: what the endpoint emulator writes is what every reader parses."""

import base64
import json
from datetime import UTC, datetime

import pytest

from rankops.monitoring.data_capture import (
    CaptureError,
    capture_bytes,
    capture_key,
    capture_line,
    millisecond_time,
    parse_line,
    variant_of_key,
)

WHEN = datetime(2026, 12, 1, 9, 5, 7, 123000, tzinfo=UTC)


def test_a_json_capture_round_trips_with_its_metadata() -> None:
    request = {"user_id": "u-1", "candidates": ["i-1", "i-2"]}
    response = {"ranking": [{"item_id": "i-2", "score": 1.0}], "model_version": "3"}
    line = capture_line(
        json.dumps(request).encode(), json.dumps(response).encode(), inference_time=WHEN, event_id="e-1"
    )
    raw = json.loads(line)
    assert raw["eventVersion"] == "0"
    assert raw["captureData"]["endpointInput"] == {
        "observedContentType": "application/json",
        "mode": "INPUT",
        "data": json.dumps(request),
        "encoding": "JSON",
    }
    assert raw["eventMetadata"] == {"eventId": "e-1", "inferenceTime": "2026-12-01T09:05:07Z"}
    parsed = parse_line(line, "ep", "champion")
    assert (parsed.request, parsed.response, parsed.event_id) == (request, response, "e-1")
    assert parsed.inference_time == WHEN.replace(microsecond=0)


def test_the_local_logs_lines_keep_milliseconds() -> None:
    """The local server's feedback log writes the same lines with a millisecond ``inferenceTime``
    (the simulator's clock has them); they read back to the millisecond."""
    line = capture_bytes(b'{"user_id": "u-1"}', b'{"ranking": []}', inference_time=millisecond_time(WHEN.timestamp()))
    assert json.loads(line)["eventMetadata"]["inferenceTime"] == "2026-12-01T09:05:07.123Z"
    assert parse_line(line, "local", "champion").inference_time == WHEN


def test_content_types_not_listed_as_json_are_base64() -> None:
    line = capture_line(b'{"a": 1}', b'{"b": 2}', content_type="application/x-other", inference_time=WHEN)
    part = json.loads(line)["captureData"]["endpointInput"]
    assert part["encoding"] == "BASE64" and base64.b64decode(part["data"]) == b'{"a": 1}'
    assert parse_line(line, "ep", "v").request == {"a": 1}


def test_keys_follow_sagemakers_layout_and_name_their_variant() -> None:
    key = capture_key("s3://bucket/capture/", "rankops-dev-ranker", "challenger", WHEN, "abc")
    assert key == "s3://bucket/capture/rankops-dev-ranker/challenger/2026/12/01/09/05-07-123-abc.jsonl"
    assert variant_of_key(key, "s3://bucket/capture", "rankops-dev-ranker") == "challenger"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"captureData": {}}', "eventMetadata is missing"),
        (
            '{"captureData": {"endpointInput": {"data": "{}", "encoding": "JSON"}}, '
            '"eventMetadata": {"inferenceTime": "yesterday"}}',
            "inferenceTime",
        ),
        (
            '{"captureData": {"endpointInput": {"data": "{}", "encoding": "JSON"}}, '
            '"eventMetadata": {"inferenceTime": "2026-12-01T09:00:00"}}',
            "inferenceTime",
        ),
        (
            '{"captureData": {"endpointInput": {"data": "{", "encoding": "JSON"}, '
            '"endpointOutput": {"data": "{}", "encoding": "JSON"}}, '
            '"eventMetadata": {"inferenceTime": "2026-12-01T09:00:00Z"}}',
            "endpointInput is not a JSON body",
        ),
    ],
)
def test_lines_that_do_not_parse_say_why(line: str, reason: str) -> None:
    with pytest.raises(CaptureError, match=reason):
        parse_line(line, "ep", "champion")
