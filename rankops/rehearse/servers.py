"""The local processes a rehearsal stands on: moto in server mode, a private redis-server.

moto runs *in this process* (``ThreadedMotoServer``) so that moto's in-memory backends, boto3
clients given its URL, pyarrow's S3 client (``AWS_ENDPOINT_URL``) and subprocesses all see one
world. Every server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from rankops.errors import RankopsError

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def _listed_services_once() -> Iterator[None]:
    """moto's server finds a request's service by testing the host against
    ``moto.backends.list_of_moto_modules()``, which lists moto's package folder and stats each of its
    ~175 entries *on every request*. In a rehearsal (thousands of requests a minute, served by threads
    of this process while Spark, the pipeline and the emulator compete for the GIL) that scan was the
    largest piece of moto's own request handling (py-spy). The folder does not change while the
    process runs: it is listed once and the same names are answered until the server stops."""
    from moto import backends

    original = backends.list_of_moto_modules
    names = tuple(original())
    backends.list_of_moto_modules = lambda: iter(names)
    try:
        yield
    finally:
        backends.list_of_moto_modules = original


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in this process; yields its URL (``http://127.0.0.1:<port>``). moto's backends
    are process-global: they are reset when the server starts and when it stops, so a world never
    sees another's resources."""
    import logging
    from unittest.mock import patch

    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    from rankops.pipeline.engine import MOTO_CONFIG

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    # Step Functions executes state machines and Lambda runs handlers without Docker (the engine's
    # seams run them in-process), as for the local pipeline: set before any resource is created,
    # since moto picks the backend that stores a resource from this configuration.
    with patch.dict(default_user_config, {**default_user_config, **MOTO_CONFIG}), _listed_services_once():
        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto's Step Functions interpreter calls the services (Lambda, SNS) on localhost:$MOTO_PORT
        before = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(port)
        try:
            _reset(url)
            yield url
        finally:
            _reset(url)
            server.stop()
            if before is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = before


def _reset(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")):  # noqa: S310 - local
        pass


@contextmanager
def redis_server(
    folder: Path, password: str | None, parameters: Mapping[str, str] | None = None, timeout_s: float = 10.0
) -> Iterator[str]:
    """A private ``redis-server`` (ElastiCache's stand-in, with its AUTH token and its parameter
    group's settings, redis.conf names); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RankopsError("redis-server is not installed (apt-get install redis-server): it stands in for ElastiCache")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(folder)]
    if password:
        args += ["--requirepass", password]
    for name, value in (parameters or {}).items():
        args += [f"--{name}", value]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - our own binary
    try:
        deadline = time.monotonic() + timeout_s
        while not _reachable(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RankopsError(f"the private redis-server on port {port} did not start")
            time.sleep(0.05)
        yield f"redis://{HOST}:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
