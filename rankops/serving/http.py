"""Thin Starlette adapter: SageMaker's ``GET /ping`` and ``POST /invocations``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rankops.errors import RankopsError, RequestError
from rankops.serving.core import Ranker
from rankops.serving.schema import encode, parse_request

JSON = "application/json"


def _error(status: int, message: str) -> Response:
    return Response(encode({"error": message}), status_code=status, media_type=JSON)


def create_app(ranker: Ranker, max_candidates: int, max_body_bytes: int) -> Starlette:
    async def ping(_: Request) -> Response:
        return Response(b"", status_code=200)

    async def invocations(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, f"request body is {declared} bytes; the limit is {max_body_bytes}")
        try:
            parsed = parse_request(
                await request.body(), request.headers.get("content-type"), max_candidates, max_body_bytes
            )
            return Response(encode(ranker.rank(parsed)), media_type=JSON)
        except RequestError as err:
            return _error(err.status, str(err))
        except RankopsError as err:
            return _error(503, str(err))

    return Starlette(
        routes=[Route("/ping", ping, methods=["GET"]), Route("/invocations", invocations, methods=["POST"])]
    )
