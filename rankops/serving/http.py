"""Thin Starlette adapter over :mod:`rankops.serving.invocations`: SageMaker's ``GET /ping``
and ``POST /invocations``, plus ``GET /metrics`` (Prometheus) and ``GET /release`` (what this
process serves, and which life of the metric counters ``/metrics`` reports: release checks
subtract per step).

Ranking is CPU-bound (a few milliseconds of LightGBM), so it runs directly on
the event loop: one worker process per core, no thread hand-off per request.
Start-up and shutdown of the background threads (release watcher, shadow
scorer) follow the ASGI lifespan, so each worker process runs its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from rankops.errors import RequestError
from rankops.serving.invocations import JSON, Limits, invocations, rejected, release

if TYPE_CHECKING:
    from rankops.serving.core import Ranker


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
    limits: Limits,
    on_startup: Sequence[Callable[[], None]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Starlette:
    """The ASGI app over :func:`rankops.serving.invocations.invocations`; reading the body (with
    its size limit) is the only work done here."""

    async def ping(_: Request) -> Response:
        return Response(b"", status_code=200)

    async def invocations_route(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request, limits.max_body_bytes)
        except RequestError as err:
            status, answer = rejected(ranker, err, started)
        except ClientDisconnect:
            status, answer = rejected(
                ranker, RequestError("the client disconnected before sending the whole body"), started
            )
        else:
            status, answer = invocations(
                ranker, limits, body, request.headers.get("content-type"), request.headers, started
            )
        return Response(answer, status_code=status, media_type=JSON)

    async def metrics(_: Request) -> Response:
        body, content_type = ranker.metrics.exposition()
        return Response(body, media_type=content_type)

    async def release_route(_: Request) -> Response:
        return Response(release(ranker), media_type=JSON)

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
            Route("/invocations", invocations_route, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/release", release_route, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
