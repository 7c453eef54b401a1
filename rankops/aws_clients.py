"""boto3 clients and pyarrow S3 filesystems made once per process and configuration, as a Lambda
keeps them between invocations.

Creating a client loads and parses its service model, ~50-100 ms of CPU each time. The release
Lambda's handler made new ones on every call; in a rehearsal (one process, one GIL for moto, the
emulator and the handlers) that was 15 s of a full release. A client is reused while the settings
that choose its endpoint, region and credentials are unchanged, so a process pointed at another
world (a test, a rehearsal) gets new clients. boto3's low-level clients are thread-safe.

pyarrow's ``FileSystem.from_uri`` builds a new S3 client and resolves the bucket's region (a
request) on every call; the lake called it for every object it touched, ~40 % of writing a
marketplace to the rehearsal's S3 lake (486 calls). :func:`s3_filesystem` keeps one per bucket under
the same rule. pyarrow filesystems are thread-safe, and their default credential chain refreshes
expiring (role) credentials itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
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


def _once(key: tuple[str | None, ...], make: Callable[[], Any]) -> Any:
    with _lock:
        made = _clients.get(key)
    if made is None:
        made = make()
        with _lock:
            made = _clients.setdefault(key, made)
    return made


def _configuration(service: str) -> tuple[str | None, ...]:
    specific = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    return tuple(os.environ.get(name) for name in (*_SETTINGS, specific))


def client(service: str) -> Any:
    """``boto3.client(service)``, made once for the current endpoint, region and credentials."""
    import boto3

    return _once(("client", service, *_configuration(service)), lambda: boto3.client(service))


def s3_filesystem(bucket: str) -> Any:
    """pyarrow's ``S3FileSystem`` for ``bucket`` (as ``FileSystem.from_uri("s3://<bucket>")`` makes
    it), made once for the current endpoint, region and credentials."""
    import pyarrow.fs as pafs

    return _once(("s3fs", bucket, *_configuration("s3")), lambda: pafs.FileSystem.from_uri(f"s3://{bucket}")[0])
