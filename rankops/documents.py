"""Small JSON documents on S3 or a local disk, with the standard library and boto3 only.

Lambda handlers (which have no pyarrow or pydantic) read and write pipeline and lineage
documents through this module; a local write is atomic (temporary file, then rename),
an S3 write is a single PUT. The lake itself (:mod:`rankops.lake`) uses pyarrow.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def s3_client() -> Any:
    from rankops.aws_clients import client

    return client("s3")


LOCAL_BUCKETS_ENV = "RANKOPS_LOCAL_BUCKETS"


def local_path(uri: str) -> Path | None:
    """For a local pipeline run: the folder standing in for an ``s3://`` bucket.

    The local runner sets ``RANKOPS_LOCAL_BUCKETS`` (JSON: bucket -> folder) for its process,
    so the same handler code reads the local lake where AWS reads S3. Unset in AWS."""
    mapping = os.environ.get(LOCAL_BUCKETS_ENV)
    if not mapping or not uri.startswith("s3://"):
        return None
    bucket, key = split_s3(uri)
    folder = json.loads(mapping).get(bucket)
    return Path(folder) / key if folder else None


def read_text(uri: str, s3: Any = None) -> str | None:
    """The document at ``uri`` (``s3://`` or a path), or ``None`` if it does not exist."""
    uri = str(local_path(uri) or uri)
    if uri.startswith("s3://"):
        client = s3 or s3_client()
        bucket, key = split_s3(uri)
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return str(body.decode())
    path = Path(uri.removeprefix("file://"))
    return path.read_text() if path.is_file() else None


def write_text(uri: str, text: str, s3: Any = None) -> None:
    uri = str(local_path(uri) or uri)
    if uri.startswith("s3://"):
        bucket, key = split_s3(uri)
        (s3 or s3_client()).put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")
        return
    path = Path(uri.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_json(uri: str, s3: Any = None) -> Any:
    """The JSON document at ``uri``, or ``None`` if it does not exist."""
    text = read_text(uri, s3)
    return None if text is None else json.loads(text)


def write_json(uri: str, document: Any, s3: Any = None) -> None:
    write_text(uri, json.dumps(document, indent=2, sort_keys=True, default=str), s3)
