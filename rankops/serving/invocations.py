"""``POST /invocations`` as a pure function of bytes: body, content type and headers in,
status and JSON body out (as MLflow's scoring server keeps ``invocations`` apart from its
WSGI/ASGI adapters). Parsing (:mod:`rankops.serving.schema`), ranking
(:class:`rankops.serving.core.Ranker`), encoding and the mapping of errors to statuses
happen here; :mod:`rankops.serving.http` only moves bytes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rankops.errors import RequestError
from rankops.serving.schema import encode, parse_request

if TYPE_CHECKING:
    from rankops.serving.core import Ranker

JSON = "application/json"
TARGET_HEADER = "x-rankops-variant"  # force champion | challenger | previous (pre-traffic checks)


@dataclass(frozen=True)
class Limits:
    """What one request may carry (``[serving] max_candidates`` / ``max_body_bytes``)."""

    max_candidates: int
    max_body_bytes: int


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (HTTP field names are case-insensitive)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def rejected(ranker: Ranker, err: RequestError, started: float) -> tuple[int, bytes]:
    """The status and one-line JSON error of a refused request, counted as ``rejected``."""
    ranker.metrics.request_seconds.labels("none", "rejected").observe(time.perf_counter() - started)
    return err.status, encode({"error": str(err)})


def invocations(
    ranker: Ranker,
    limits: Limits,
    body: bytes,
    content_type: str | None,
    headers: Mapping[str, str],
    started: float | None = None,
) -> tuple[int, bytes]:
    """One ranking request: ``(200, ranking JSON)``, or ``(4xx, {"error": ...})`` naming the
    problem. ``started`` (``time.perf_counter()``) is when the request arrived, for the
    latency budget and the request metric; default now."""
    started = time.perf_counter() if started is None else started
    try:
        request = parse_request(
            body, content_type, limits.max_candidates, limits.max_body_bytes, header(headers, TARGET_HEADER)
        )
        response, cohort = ranker.answer(request, started)
        answer = encode(response)
        if ranker.feedback is not None:  # the bytes as sent, as data capture logs them
            ranker.feedback.submit(body, answer, cohort)
        return 200, answer
    except RequestError as err:
        return rejected(ranker, err, started)


def release(ranker: Ranker) -> bytes:
    """``GET /release``: what this process serves and which life of the metric counters it reports."""
    return encode({**ranker.describe(), "metrics_instance": ranker.metrics.instance})
