"""Thin Starlette adapter: SageMaker's ``GET /ping`` and ``POST /invocations``, plus
``GET /metrics`` (Prometheus) and ``GET /release`` (what this process serves, and which
life of the metric counters ``/metrics`` reports: release checks subtract per step).

Ranking is CPU-bound (a few milliseconds of LightGBM), so it runs directly on
the event loop: one worker process per core, no thread hand-off per request.
Start-up and shutdown of the background threads (release watcher, shadow
scorer) follow the ASGI lifespan, so each worker process runs its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from rankops.errors import RequestError
from rankops.serving.core import Ranker
from rankops.serving.schema import encode, parse_request

JSON = "application/json"
TARGET_HEADER = "x-rankops-variant"  # force champion | challenger | previous (pre-traffic checks)


def _error(status: int, message: str) -> Response:
    return Response(encode({"error": message}), status_code=status, media_type=JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing to buffer more than ``limit`` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise RequestError(f"request body is {declared} bytes; the limit is {limit}", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"request body exceeds the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    ranker: Ranker,
    max_candidates: int,
    max_body_bytes: int,
    on_startup: Sequence[Callable[[], None]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Starlette:
    rejected = ranker.metrics.request_seconds.labels("none", "rejected")

    async def ping(_: Request) -> Response:
        return Response(b"", status_code=200)

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request, max_body_bytes)
            headers = request.headers
            parsed = parse_request(
                body, headers.get("content-type"), max_candidates, max_body_bytes, headers.get(TARGET_HEADER)
            )
            return Response(encode(ranker.rank(parsed, started)), media_type=JSON)
        except RequestError as err:
            rejected.observe(time.perf_counter() - started)
            return _error(err.status, str(err))
        except ClientDisconnect:
            rejected.observe(time.perf_counter() - started)
            return _error(400, "the client disconnected before sending the whole body")

    async def metrics(_: Request) -> Response:
        body, content_type = ranker.metrics.exposition()
        return Response(body, media_type=content_type)

    async def release(_: Request) -> Response:
        return Response(encode({**ranker.describe(), "metrics_instance": ranker.metrics.instance}), media_type=JSON)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for start in on_startup:
            start()
        try:
            yield
        finally:
            for stop in on_shutdown:
                stop()

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/release", release, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
