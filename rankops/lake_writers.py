"""What makes concurrent lake writers safe: a lease per dataset and deferred deletion.

Two writers committing the same partition used to corrupt it: each commit deleted the
files missing from its own manifest, so one writer deleted the other's freshly listed
files. Now a writer holds the dataset's lease for the whole commit (move files, write
the manifest, retire the replaced files), and replaced files are only *retired*: their
names and retirement time go to the partition's ``_RETIRED`` record and they are
deleted by a later commit once ``retire_after_s`` has passed, so a reader that listed
the old manifest can still read every file it names.

The lease is a file lock (``fcntl.flock``) on a local lake and, on S3, an object
created with a conditional write (``If-None-Match: *``): exactly one writer creates
it; it carries an expiry so a crashed writer's lease is taken over (``If-Match`` on
the expired lease's ETag), never two at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow.fs as pafs

from rankops.errors import LakeError

LEASE = "_lease"
RETIRED = "_RETIRED"
# Check raised before a manifest is published: the lease is still this writer's.
LeaseCheck = Callable[[], None]
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


@contextmanager
def file_lease(path: str, timeout_s: float, poll_s: float = 0.02) -> Iterator[LeaseCheck]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block.

    The kernel drops the lock when the holder exits, even on ``kill -9``, so a local
    lease needs no expiry."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LakeError(
                        f"{path} is held by another writer of this dataset for more than {timeout_s:.0f} s; "
                        "retry when it has committed"
                    ) from None
                time.sleep(poll_s)
        yield lambda: None
    finally:
        os.close(fd)


def _code(err: Exception) -> str:
    response = getattr(err, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Lease:
    """A lease object in S3 created with ``If-None-Match: *`` (one winner), released with ``If-Match``."""

    def __init__(
        self, client: Any, bucket: str, key: str, *, ttl_s: float, timeout_s: float, poll_s: float = 0.05
    ) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._ttl_s, self._timeout_s, self._poll_s = ttl_s, timeout_s, poll_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._etag: str | None = None

    def _put(self, **condition: str) -> bool:
        body = json.dumps({"owner": self.owner, "expires_at": time.time() + self._ttl_s}).encode()
        try:
            reply = self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body, **condition)
        except Exception as err:
            if _code(err) in _CONFLICT:
                return False
            raise LakeError(f"cannot write the lake lease s3://{self._bucket}/{self._key}: {err}") from err
        self._etag = str(reply["ETag"])
        return True

    def _holder(self) -> tuple[str, dict[str, Any]] | None:
        try:
            reply = self._client.get_object(Bucket=self._bucket, Key=self._key)
        except Exception as err:
            if _code(err) in {"NoSuchKey", "404"}:
                return None
            raise LakeError(f"cannot read the lake lease s3://{self._bucket}/{self._key}: {err}") from err
        return str(reply["ETag"]), json.loads(reply["Body"].read())

    def acquire(self) -> None:
        """Create the lease, or take over an expired one; wait for a live holder up to ``timeout_s``."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            if self._put(IfNoneMatch="*"):
                return
            holder = self._holder()
            if holder and float(holder[1].get("expires_at", 0)) < time.time() and self._put(IfMatch=holder[0]):
                return
            if time.monotonic() > deadline:
                who = holder[1].get("owner", "?") if holder else "?"
                raise LakeError(
                    f"s3://{self._bucket}/{self._key} is held by writer {who} for more than "
                    f"{self._timeout_s:.0f} s; retry when it has committed"
                )
            time.sleep(self._poll_s)

    def check(self) -> None:
        """Raise unless the lease is still ours (it expired and another writer took it over)."""
        holder = self._holder()
        if holder is None or holder[0] != self._etag:
            raise LakeError(
                f"lost the lake lease s3://{self._bucket}/{self._key} (commit took longer than "
                f"{self._ttl_s:.0f} s); nothing was published, run the write again"
            )

    def release(self) -> None:
        if self._etag is None:
            return
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._key, IfMatch=self._etag)
        except Exception as err:  # taken over after expiry or already gone: not ours to delete
            if _code(err) not in _CONFLICT | {"NoSuchKey", "404"}:
                raise LakeError(f"cannot release the lake lease s3://{self._bucket}/{self._key}: {err}") from err
        self._etag = None


@contextmanager
def s3_lease(client: Any, uri: str, *, ttl_s: float, timeout_s: float) -> Iterator[LeaseCheck]:
    """Hold the S3 lease at ``uri`` (``s3://bucket/key``) for the block."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    lease = S3Lease(client, bucket, key, ttl_s=ttl_s, timeout_s=timeout_s)
    lease.acquire()
    try:
        yield lease.check
    finally:
        lease.release()


# -- deferred deletion -----------------------------------------------------------------------
def read_doc(fs: pafs.FileSystem, path: str) -> dict[str, Any] | None:
    """A small JSON document, or None when it does not exist."""
    try:
        with fs.open_input_stream(path) as stream:
            return dict(json.loads(stream.read()))
    except FileNotFoundError:
        return None


def sweep(
    fs: pafs.FileSystem, folder: str, keep: set[str], retired: dict[str, float], now: float, retire_after_s: float
) -> dict[str, float]:
    """Delete the folder's Parquet files that are not in ``keep`` and were retired (or, for
    files no manifest ever named, written) at least ``retire_after_s`` ago.

    Returns the retirement record still pending (names retired too recently)."""
    pending: dict[str, float] = {}
    for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        name = info.base_name
        if info.type != pafs.FileType.File or not name.endswith(".parquet") or name in keep:
            continue
        since = retired.get(name, info.mtime.timestamp() if info.mtime else now)
        if now - since >= retire_after_s:
            fs.delete_file(info.path)
        elif name in retired:
            pending[name] = since
    return pending
