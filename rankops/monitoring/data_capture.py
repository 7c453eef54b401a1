"""SageMaker data capture: the format written by an endpoint, and one parser for it.

A SageMaker endpoint with ``DataCaptureConfig`` writes, per variant (production and shadow), JSON
Lines objects under::

    <DestinationS3Uri>/<endpoint name>/<variant name>/<yyyy>/<mm>/<dd>/<hh>/<mm>-<ss>-<mmm>-<uuid>.jsonl

each line one captured invocation::

    {"captureData": {"endpointInput":  {"observedContentType": "application/json", "mode": "INPUT",
                                        "data": "<the request body>", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "<the response body>", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<optional>", "inferenceTime": "2026-12-01T09:00:00Z"},
     "eventVersion": "0"}

``data`` is the body as text when its content type is listed in the config's
``CaptureContentTypeHeader.JsonContentTypes`` (``encoding: JSON``), else base64 (``BASE64``).
The rehearsal's endpoint emulator writes exactly this (:func:`capture_line`, :func:`capture_key`),
so does the local server's feedback log (:mod:`rankops.feedback.log`, under the lake's
``raw/datacapture/local/``, ``inferenceTime`` with milliseconds), and every reader in rankops
parses it here (:func:`parse_line`), so the shadow comparison and the feedback log read one
format, the one AWS writes.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rankops.errors import DataError

try:  # the server and the jobs have orjson (several times faster); the Lambda runtime does not
    import orjson
except ImportError:  # pragma: no cover - exercised by tests/unit/test_lambda_runtime.py
    orjson = None  # type: ignore[assignment]

EVENT_VERSION = "0"
JSON_CONTENT_TYPES = ("application/json",)
SECONDS = "%Y-%m-%dT%H:%M:%SZ"  # the inferenceTime SageMaker writes


class CaptureError(DataError):
    """A captured line that does not parse; the message is the quarantine reason."""


@dataclass(frozen=True)
class CapturedInvocation:
    """One captured request and its answer, as the variant that answered saw them."""

    endpoint: str
    variant: str
    event_id: str
    inference_time: datetime
    request: dict[str, Any]
    response: dict[str, Any]
    inference_id: str | None = None


def _encode(body: bytes, content_type: str, json_types: Iterable[str]) -> dict[str, str]:
    if content_type.split(";")[0].strip() in json_types:
        return {"data": body.decode("utf-8"), "encoding": "JSON"}
    return {"data": base64.b64encode(body).decode("ascii"), "encoding": "BASE64"}


def capture_line(
    request_body: bytes,
    response_body: bytes,
    *,
    content_type: str = "application/json",
    accept: str = "application/json",
    inference_time: datetime,
    event_id: str | None = None,
    inference_id: str | None = None,
    json_types: Iterable[str] = JSON_CONTENT_TYPES,
) -> str:
    """One capture line (no newline), as SageMaker writes it for one invocation."""
    return capture_bytes(
        request_body,
        response_body,
        content_type=content_type,
        accept=accept,
        inference_time=inference_time.astimezone(UTC).strftime(SECONDS),
        event_id=event_id,
        inference_id=inference_id,
        json_types=json_types,
    ).decode()


def capture_bytes(
    request_body: bytes,
    response_body: bytes,
    *,
    inference_time: str,
    content_type: str = "application/json",
    accept: str = "application/json",
    event_id: str | None = None,
    inference_id: str | None = None,
    json_types: Iterable[str] = JSON_CONTENT_TYPES,
) -> bytes:
    """:func:`capture_line` as UTF-8 bytes, ``inference_time`` already formatted (the local
    feedback log writes milliseconds, :func:`millisecond_time`; about 6 µs for a 100-candidate answer)."""
    types = tuple(json_types)
    metadata: dict[str, str] = {"eventId": event_id or str(uuid.uuid4()), "inferenceTime": inference_time}
    if inference_id:
        metadata["inferenceId"] = inference_id
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": content_type,
                "mode": "INPUT",
                **_encode(request_body, content_type, types),
            },
            "endpointOutput": {
                "observedContentType": accept,
                "mode": "OUTPUT",
                **_encode(response_body, accept, types),
            },
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }
    if orjson is None:
        return json.dumps(record, separators=(",", ":")).encode()
    return orjson.dumps(record)


def millisecond_time(epoch_s: float) -> str:
    """``epoch_s`` as an ``inferenceTime`` with milliseconds (``2026-12-01T09:00:00.123Z``: the
    local server's simulator clock has them)."""
    t = datetime.fromtimestamp(epoch_s, UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def capture_key(destination_uri: str, endpoint: str, variant: str, when: datetime, file_id: str | None = None) -> str:
    """Where SageMaker puts a capture file written at ``when`` (UTC hour folders)."""
    t = when.astimezone(UTC)
    name = f"{t:%M-%S}-{t.microsecond // 1000:03d}-{file_id or uuid.uuid4().hex}.jsonl"
    return f"{destination_uri.rstrip('/')}/{endpoint}/{variant}/{t:%Y/%m/%d/%H}/{name}"


def variant_prefix(destination_uri: str, endpoint: str, variant: str) -> str:
    """The folder holding every capture file of one variant."""
    return f"{destination_uri.rstrip('/')}/{endpoint}/{variant}/"


def _decode(part: Any, what: str) -> dict[str, Any]:
    if not isinstance(part, dict) or "data" not in part:
        raise CaptureError(f"{what} is missing or has no data")
    data, encoding = part["data"], str(part.get("encoding", "")).upper()
    try:
        if encoding == "BASE64":
            data = base64.b64decode(data, validate=True).decode("utf-8")
        elif encoding not in ("JSON", ""):
            raise CaptureError(f"{what} has encoding {encoding!r}; only JSON and BASE64 bodies are read")
        body = _loads(data)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as err:
        raise CaptureError(f"{what} is not a JSON body: {err}") from None
    if not isinstance(body, dict):
        raise CaptureError(f"{what} is JSON but not an object")
    return body


def _loads(text: str | bytes) -> Any:
    """JSON via orjson (several times faster on the local log's reads); what orjson refuses but
    json reads (``NaN``, ``Infinity``) is read by json."""
    if orjson is None:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _inference_time(text: str) -> datetime:
    """An ``inferenceTime`` in UTC (``...Z``): whole seconds as SageMaker writes it, or with a
    fraction. ``fromisoformat`` (C) parses it; ``strptime`` took ~16 µs per line."""
    if not text.endswith("Z") or "T" not in text:
        raise ValueError(f"not a UTC time: {text!r}")
    return datetime.fromisoformat(text).astimezone(UTC)


def parse_line(line: str | bytes, endpoint: str, variant: str) -> CapturedInvocation:
    """Parse one capture line of ``endpoint``/``variant``; :class:`CaptureError` names what is wrong."""
    try:
        record = _loads(line)
    except ValueError as err:
        raise CaptureError(f"not JSON: {err}") from None
    if not isinstance(record, dict):
        raise CaptureError("not a JSON object")
    capture, metadata = record.get("captureData"), record.get("eventMetadata")
    if not isinstance(capture, dict) or not isinstance(metadata, dict):
        raise CaptureError("captureData or eventMetadata is missing")
    try:
        when = _inference_time(str(metadata["inferenceTime"]))
    except (KeyError, ValueError):
        raise CaptureError(
            f"eventMetadata.inferenceTime is missing or malformed: {metadata.get('inferenceTime')!r}"
        ) from None
    return CapturedInvocation(
        endpoint=endpoint,
        variant=variant,
        event_id=str(metadata.get("eventId", "")),
        inference_time=when,
        request=_decode(capture.get("endpointInput"), "endpointInput"),
        response=_decode(capture.get("endpointOutput"), "endpointOutput"),
        inference_id=metadata.get("inferenceId"),
    )


def variant_of_key(key: str, destination_uri: str, endpoint: str) -> str:
    """The variant name of a capture file's key (the folder after the endpoint's)."""
    prefix = f"{destination_uri.rstrip('/')}/{endpoint}/"
    if not key.startswith(prefix):
        raise CaptureError(f"{key} is not under {prefix}")
    return key[len(prefix) :].split("/", 1)[0]
