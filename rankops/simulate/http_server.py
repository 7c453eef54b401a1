"""The simulation's in-process app, also reachable over HTTP for the release steps.

Simulated searches reach the app in-process (:class:`Client`: no sockets, no threads per request);
the release steps of the pipeline (``rankops.release.local``) read ``/release`` and ``/metrics``
over HTTP, as they do against the background server. So the same app object is also served by
uvicorn on a free loopback port in a thread, without its lifespan (the simulator starts the
server's background parts itself, once).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from rankops.errors import DataError


class Client:
    """POSTs to an ASGI app in-process (httpx on a private event loop)."""

    def __init__(self, app: Any) -> None:
        import httpx

        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rankops.simulate")

    def rank(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._loop.run_until_complete(self._client.post("/invocations", json=body))
        if response.status_code != 200:
            raise DataError(f"the server refused a simulated request ({response.status_code}): {response.text[:200]}")
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


class HttpThread:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) until :meth:`stop`."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="simulate-http", daemon=True
        )

    def start(self, timeout_s: float = 30.0) -> HttpThread:
        self._thread.start()
        ready = threading.Event()

        def poll() -> None:
            while not self._server.started and self._thread.is_alive():
                ready.wait(0.01)

        poll()
        if not self._server.started:
            raise DataError(f"the simulation's HTTP server did not start on {self.url}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
