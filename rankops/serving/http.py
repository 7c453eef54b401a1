"""Thin Starlette adapter over :mod:`rankops.serving.invocations`: SageMaker's ``GET /ping``
and ``POST /invocations``, plus ``GET /metrics`` (Prometheus) and ``GET /release`` (what this
process serves, and which life of the metric counters ``/metrics`` reports: release checks
subtract per step).

Ranking is CPU-bound (a few milliseconds of LightGBM), so it runs directly on
the event loop: one worker process per core, no thread hand-off per request.
``POST /invocations`` is answered by a bare ASGI callable in front of Starlette
(:class:`Invocations`): it is every request of the serving hot path, and Starlette's
middleware, routing and request/response objects cost CPU that buys nothing there
(docs/scoring.md). Everything else goes through Starlette.
Start-up and shutdown of the background threads (release watcher, shadow
scorer) follow the ASGI lifespan, so each worker process runs its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rankops.errors import RequestError
from rankops.serving.invocations import JSON, Limits, invocations, rejected, release

JSON_BYTES = JSON.encode()

if TYPE_CHECKING:
    from rankops.serving.core import Ranker


async def _read_body(declared: str | None, receive: Receive, limit: int) -> bytes:
    """The body, refusing to buffer more than ``limit`` bytes whatever Content-Length claims."""
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise RequestError(f"request body is {declared} bytes; the limit is {limit}", status=413)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError("the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(f"request body exceeds the limit of {limit} bytes", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Invocations:
    """``/invocations`` as bare ASGI middleware (outermost but Starlette's error handler): POST is
    ranked, other methods get 405; any other path goes on to Starlette's router."""

    def __init__(self, app: ASGIApp, ranker: Ranker, limits: Limits) -> None:
        self.app = app
        self.ranker = ranker
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/invocations":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"POST")]})
            await send({"type": "http.response.body", "body": b""})
            return
        started = time.perf_counter()
        # ASGI header names are lower-case bytes; the first of repeated headers wins (as in Starlette).
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(scope["headers"])}
        try:
            body = await _read_body(headers.get("content-length"), receive, self.limits.max_body_bytes)
        except RequestError as err:
            status, answer = rejected(self.ranker, err, started)
        else:
            status, answer = invocations(self.ranker, self.limits, body, headers.get("content-type"), headers, started)
        head = [(b"content-type", JSON_BYTES), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": answer})


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
            Route("/metrics", metrics, methods=["GET"]),
            Route("/release", release_route, methods=["GET"]),
        ],
        middleware=[Middleware(Invocations, ranker=ranker, limits=limits)],
        lifespan=lifespan,
    )
