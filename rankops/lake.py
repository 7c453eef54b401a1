"""The data lake: zones, dataset paths and atomic publication.

A zone (raw, curated, features, artifacts) is a local folder or an
``s3://bucket/prefix``; the same code serves both through ``pyarrow.fs``.

Publication protocol (the reason this module exists): a dataset is a folder of
hive-style partitions (``dt=2026-11-01/hour=05``). Writers stage files under
``<dataset>/_staging/<run_id>/``, move them into the partition folder, and only
then write the partition's ``_SUCCESS`` manifest, a JSON document that lists the
files of the committed run. Writing one small object is atomic on a local disk
(write + rename) and on S3 (single PUT), so a reader that goes through
:meth:`Lake.files` sees either the previous complete partition or the new complete
one, never a half-written one. Concurrent writers and the deferred deletion of
replaced files are :mod:`rankops.lake_writers`' business.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rankops import aws_clients
from rankops.errors import LakeError
from rankops.lake_writers import LEASE, RETIRED, LeaseCheck, file_lease, read_doc, s3_lease, sweep

Zone = Literal["raw", "curated", "features", "artifacts"]
ZONES: tuple[str, ...] = get_args(Zone)
MANIFEST = "_SUCCESS"


@dataclass(frozen=True)
class Partition:
    """One committed partition: its key values (as strings) and its manifest."""

    dataset_uri: str
    values: dict[str, str]
    files: tuple[str, ...]
    rows: int
    run_id: str
    committed_at: float

    @property
    def path(self) -> str:
        return "/".join(f"{k}={v}" for k, v in self.values.items())


def new_run_id() -> str:
    """Sortable, unique run id: UTC timestamp plus a random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def write_atomic(fs: pafs.FileSystem, path: str, payload: bytes) -> None:
    """Replace the file at ``path`` of ``fs`` whole: write + rename locally, a single PUT on S3."""
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with fs.open_output_stream(tmp) as out:
            out.write(payload)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as out:
            out.write(payload)


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


class Lake:
    """Paths and atomic reads/writes over the lake's zones.

    ``retire_after_s`` is how long a replaced file stays readable (the longest a reader may
    hold a manifest); ``lease_timeout_s`` how long a writer waits for another writer of the
    same dataset; ``lease_ttl_s`` after how long an S3 lease of a crashed writer is taken over.
    """

    def __init__(
        self,
        zone_uris: Mapping[str, str],
        *,
        retire_after_s: float = 3600.0,
        lease_timeout_s: float = 600.0,
        lease_ttl_s: float = 300.0,
        s3_client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        missing = set(ZONES) - set(zone_uris)
        if missing:
            raise LakeError(f"lake zones {sorted(missing)} have no location")
        self._zones = {z: str(zone_uris[z]).rstrip("/") for z in ZONES}
        self.retire_after_s, self._lease_timeout_s, self._lease_ttl_s = retire_after_s, lease_timeout_s, lease_ttl_s
        self._s3_client, self._clock = s3_client, clock

    @classmethod
    def zone_reader(cls, zone: Zone, uri: str) -> Lake:
        """A lake that knows only ``zone`` at ``uri`` (a function granted one bucket, e.g. the release
        Lambda reading outcome events); any other zone is an error naming it."""
        lake = cls(dict.fromkeys(ZONES, uri))
        lake._zones = {zone: uri.rstrip("/")}
        return lake

    @classmethod
    def from_settings(cls, settings: Any) -> Lake:
        """Zones from ``settings.lake``: explicit zone URIs win over ``root/<zone>``."""
        lake = settings.lake
        root = lake.root or str(settings.home / "lake")
        return cls({z: getattr(lake, z) or _join(root, z) for z in ZONES})

    # -- paths -------------------------------------------------------------------------------
    def zone_uri(self, zone: Zone) -> str:
        if zone not in self._zones:
            raise LakeError(f"unknown lake zone {zone!r}; this lake has {tuple(self._zones)}")
        return self._zones[zone]

    def uri(self, zone: Zone, *parts: str) -> str:
        return _join(self.zone_uri(zone), *parts)

    @staticmethod
    def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
        """(filesystem, path) for a local path or an ``s3://`` URI."""
        if "://" not in uri:
            return pafs.LocalFileSystem(), uri
        parts = urlsplit(uri)
        try:
            if parts.scheme == "s3" and parts.netloc and not parts.query and not parts.fragment:
                # one client per bucket (rankops.aws_clients); the path as from_uri gives it
                return aws_clients.s3_filesystem(parts.netloc), f"{parts.netloc}{unquote(parts.path)}".rstrip("/")
            fs, path = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, OSError) as err:
            raise LakeError(f"cannot open lake location {uri!r}: {err}") from err
        return fs, path

    # -- small documents ---------------------------------------------------------------------
    def write_bytes(self, uri: str, payload: bytes) -> None:
        """Atomically replace the object at ``uri`` (rename locally, single PUT on S3)."""
        write_atomic(*self.filesystem(uri), payload)

    def read_bytes(self, uri: str) -> bytes:
        fs, path = self.filesystem(uri)
        try:
            with fs.open_input_stream(path) as stream:
                return bytes(stream.read())
        except FileNotFoundError as err:
            raise LakeError(f"{uri} does not exist") from err

    def write_json(self, uri: str, document: Any) -> None:
        self.write_bytes(uri, json.dumps(document, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_bytes(uri))

    def exists(self, uri: str) -> bool:
        fs, path = self.filesystem(uri)
        return fs.get_file_info(path).type != pafs.FileType.NotFound

    # -- partitioned datasets ----------------------------------------------------------------
    def write_partition(
        self,
        zone: Zone,
        dataset: str,
        values: Mapping[str, str],
        table: pa.Table,
        run_id: str | None = None,
        max_rows_per_file: int = 1_000_000,
    ) -> Partition:
        """Write ``table`` as one partition of ``zone/dataset`` and commit it atomically."""
        run_id = run_id or new_run_id()
        dataset_uri = self.uri(zone, dataset)
        fs, staging = self.filesystem(_join(dataset_uri, "_staging", f"{run_id}-{uuid.uuid4().hex[:6]}"))
        fs.create_dir(staging, recursive=True)
        names = []
        for i, start in enumerate(range(0, max(table.num_rows, 1), max_rows_per_file)):
            name = f"part-{run_id}-{i:05d}.parquet"
            pq.write_table(
                table.slice(start, max_rows_per_file), f"{staging}/{name}", filesystem=fs, compression="zstd"
            )
            names.append(name)
        try:
            return self._commit(
                dataset_uri, dict(values), [(f"{staging}/{n}", n) for n in names], table.num_rows, run_id
            )
        finally:  # nothing staged outlives a failed commit (e.g. a lease wait that timed out)
            fs.delete_dir(staging)

    def write_partitioned(
        self, zone: Zone, dataset: str, table: pa.Table, by: list[str], run_id: str | None = None
    ) -> list[Partition]:
        """Split ``table`` on the ``by`` columns (dropped from the files) and commit each partition."""
        run_id = run_id or new_run_id()
        if table.num_rows == 0:
            return []
        keys = table.select(by).group_by(by).aggregate([])
        committed = []
        for row in keys.to_pylist():
            mask = None
            for col in by:
                cond = pc.equal(table[col], row[col])
                mask = cond if mask is None else pc.and_(mask, cond)
            part = table.filter(mask).drop_columns(by)
            committed.append(self.write_partition(zone, dataset, {c: str(row[c]) for c in by}, part, run_id))
        return committed

    def commit_staged(self, zone: Zone, dataset: str, staged_uri: str, run_id: str) -> list[Partition]:
        """Commit the hive-partitioned Parquet output of another engine (e.g. Spark) found
        under ``staged_uri``: each partition folder becomes one committed partition."""
        dataset_uri = self.uri(zone, dataset)
        fs, staged = self.filesystem(staged_uri)
        by_partition: dict[str, list[str]] = {}
        for info in fs.get_file_info(pafs.FileSelector(staged, recursive=True, allow_not_found=True)):
            rel = info.path[len(staged) :].strip("/")
            name = rel.rsplit("/", 1)[-1]
            if info.type == pafs.FileType.File and name.endswith(".parquet") and not name.startswith(("_", ".")):
                by_partition.setdefault(rel.rsplit("/", 1)[0] if "/" in rel else "", []).append(rel)
        committed = []
        for part_path, rels in sorted(by_partition.items()):
            values = dict(seg.split("=", 1) for seg in part_path.split("/") if "=" in seg)
            moves = [(_join(staged, rel), f"part-{run_id}-{i:05d}.parquet") for i, rel in enumerate(sorted(rels))]
            rows = sum(pq.ParquetFile(src, filesystem=fs).metadata.num_rows for src, _ in moves)
            committed.append(self._commit(dataset_uri, values, moves, rows, run_id))
        fs.delete_dir_contents(staged, missing_dir_ok=True)
        return committed

    def lease(self, dataset_uri: str) -> AbstractContextManager[LeaseCheck]:
        """The dataset's writer lease: a file lock locally, a conditional-write object on S3."""
        lease_uri = _join(dataset_uri, LEASE)
        if lease_uri.startswith("s3://"):
            if self._s3_client is None:
                import boto3  # only S3 lakes need it; endpoint and region come from the AWS env

                self._s3_client = boto3.client("s3")
            return s3_lease(self._s3_client, lease_uri, ttl_s=self._lease_ttl_s, timeout_s=self._lease_timeout_s)
        if "://" in lease_uri:
            raise LakeError(f"lake writes need a local path or s3:// URI, got {dataset_uri!r}")
        return file_lease(lease_uri, self._lease_timeout_s)

    def _commit(
        self, dataset_uri: str, values: dict[str, str], moves: list[tuple[str, str]], rows: int, run_id: str
    ) -> Partition:
        """Under the dataset's lease: move staged files into the partition, publish its
        manifest, retire the files it replaced and delete those retired long enough ago."""
        fs, dataset_path = self.filesystem(dataset_uri)
        part_path = "/".join(f"{k}={v}" for k, v in values.items())
        final_dir = _join(dataset_path, part_path)
        names = [name for _, name in moves]
        with self.lease(dataset_uri) as still_ours:
            fs.create_dir(final_dir, recursive=True)
            for src, name in moves:
                fs.move(src, _join(final_dir, name))
            previous = read_doc(fs, _join(final_dir, MANIFEST)) or {"files": []}
            retired = self._retire(fs, final_dir, [n for n in previous["files"] if n not in names])
            committed_at = self._clock()
            manifest = {
                "run_id": run_id,
                "files": names,
                "rows": rows,
                "committed_at": committed_at,
                "partition": values,
            }
            still_ours()
            self.write_bytes(_join(dataset_uri, part_path, MANIFEST), json.dumps(manifest).encode())
            self._sweep(fs, final_dir, set(names), retired)
        return Partition(dataset_uri, values, tuple(names), rows, run_id, committed_at)

    def _retire(self, fs: pafs.FileSystem, folder: str, names: list[str]) -> dict[str, float]:
        """The folder's retirement record with ``names`` added as retired now."""
        retired = {str(k): float(v) for k, v in (read_doc(fs, _join(folder, RETIRED)) or {}).items()}
        now = self._clock()
        for name in names:
            retired.setdefault(name, now)
        return retired

    def _sweep(self, fs: pafs.FileSystem, folder: str, keep: set[str], retired: dict[str, float]) -> bool:
        """Delete what retired long enough ago, save what is pending; True when nothing is left."""
        pending = sweep(fs, folder, keep, retired, self._clock(), self.retire_after_s)
        record = _join(folder, RETIRED)
        if pending:
            write_atomic(fs, record, json.dumps(pending).encode())
        elif fs.get_file_info(record).type == pafs.FileType.File:
            fs.delete_file(record)
        return not pending and not keep

    def drop_other_runs(self, zone: Zone, dataset: str, keep_run_id: str) -> list[Partition]:
        """Unpublish every partition of ``zone/dataset`` whose committed run is not ``keep_run_id``.

        How a writer replaces a whole dataset: it commits all of its partitions under one run id
        (a partition with the same key is replaced atomically by ``_commit``), then calls this.
        Each dropped partition loses its manifest first (readers stop seeing it in one delete);
        its files are retired and deleted once ``retire_after_s`` has passed (by this call made
        again or a later commit); folders left empty are removed. Returns the dropped partitions."""
        dataset_uri = self.uri(zone, dataset)
        fs, base = self.filesystem(dataset_uri)
        dropped = []
        with self.lease(dataset_uri):
            for part in self.partitions(zone, dataset):
                if part.run_id == keep_run_id:
                    continue
                folder = _join(base, part.path)
                fs.delete_file(_join(folder, MANIFEST))
                retired = self._retire(fs, folder, list(part.files))
                write_atomic(fs, _join(folder, RETIRED), json.dumps(retired).encode())
                dropped.append(part)
            self._collect(fs, base)
        return dropped

    def collect_garbage(self, zone: Zone, dataset: str) -> None:
        """Delete every file of ``zone/dataset`` retired at least ``retire_after_s`` ago."""
        dataset_uri = self.uri(zone, dataset)
        fs, base = self.filesystem(dataset_uri)
        with self.lease(dataset_uri):
            self._collect(fs, base)

    def _collect(self, fs: pafs.FileSystem, base: str) -> None:
        listing = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        for record in sorted(i.path for i in listing if i.base_name == RETIRED):
            folder = record.rsplit("/", 1)[0]
            manifest = read_doc(fs, _join(folder, MANIFEST))
            keep = set(manifest["files"]) if manifest else set()
            if self._sweep(fs, folder, keep, self._retire(fs, folder, [])):
                self._remove_empty(fs, base, folder[len(base) :].strip("/"))

    @staticmethod
    def _remove_empty(fs: pafs.FileSystem, base: str, part_path: str) -> None:
        if not isinstance(fs, pafs.LocalFileSystem):  # object stores have no folders to leave behind
            return
        segments = part_path.split("/")
        for depth in range(len(segments), 0, -1):
            folder = _join(base, *segments[:depth])
            info = fs.get_file_info(folder)
            if info.type != pafs.FileType.Directory or fs.get_file_info(pafs.FileSelector(folder)):
                break
            fs.delete_dir(folder)

    def partitions(self, zone: Zone, dataset: str) -> list[Partition]:
        """Committed partitions of a dataset, sorted by their key values."""
        dataset_uri = self.uri(zone, dataset)
        fs, base = self.filesystem(dataset_uri)
        found = []
        for info in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
            if info.base_name != MANIFEST or "/_staging/" in info.path:
                continue
            manifest = read_doc(fs, info.path)
            if manifest is None:  # replaced by a rename or dropped since the listing
                continue
            found.append(
                Partition(
                    dataset_uri,
                    dict(manifest["partition"]),
                    tuple(manifest["files"]),
                    int(manifest["rows"]),
                    manifest["run_id"],
                    float(manifest["committed_at"]),
                )
            )
        return sorted(found, key=lambda p: tuple(p.values.values()))

    def files(self, zone: Zone, dataset: str, partitions: Iterable[Partition] | None = None) -> list[str]:
        """URIs of every committed file (the only files a reader may read)."""
        parts = self.partitions(zone, dataset) if partitions is None else partitions
        return [_join(p.dataset_uri, p.path, name) for p in parts for name in p.files]

    def read(
        self, zone: Zone, dataset: str, columns: list[str] | None = None, partitions: Iterable[Partition] | None = None
    ) -> pa.Table:
        """Read committed partitions into one table, partition keys included as string columns."""
        parts = list(self.partitions(zone, dataset) if partitions is None else partitions)
        if not parts:
            raise LakeError(f"{self.uri(zone, dataset)} has no committed partitions; run the stage that writes it")
        fs, base = self.filesystem(parts[0].dataset_uri)
        keys = list(parts[0].values)
        partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive")
        paths = [_join(base, p.path, name) for p in parts for name in p.files]
        dataset_ = ds.dataset(
            paths, filesystem=fs, format="parquet", partitioning=partitioning, partition_base_dir=base
        )
        return dataset_.to_table(columns=columns)

    def iter_partitions(self, zone: Zone, dataset: str) -> Iterator[tuple[Partition, pa.Table]]:
        for part in self.partitions(zone, dataset):
            yield part, self.read(zone, dataset, partitions=[part])
