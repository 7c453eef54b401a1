"""boto3 clients made once per process and configuration, as a Lambda keeps them between invocations.

Creating a client loads and parses its service model, ~50-100 ms of CPU each time. The release
Lambda's handler made new ones on every call; in a rehearsal (one process, one GIL for moto, the
emulator and the handlers) that was 15 s of a full release. A client is reused while the settings
that choose its endpoint, region and credentials are unchanged, so a process pointed at another
world (a test, a rehearsal) gets new clients. boto3's low-level clients are thread-safe.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_SETTINGS = (
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)
_clients: dict[tuple[str | None, ...], Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """``boto3.client(service)``, made once for the current endpoint, region and credentials."""
    import boto3

    specific = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    key = (service, *(os.environ.get(name) for name in (*_SETTINGS, specific)))
    with _lock:
        made = _clients.get(key)
    if made is None:
        made = boto3.client(service)
        with _lock:
            made = _clients.setdefault(key, made)
    return made
