"""Lineage: one JSON record per model version, from the data it learned from to its releases.

``dataset manifest -> feature-set version -> training run -> model version -> releases``.
The record lives in the lake's artifacts zone (``<artifacts>/lineage/<model>/v<version>.json``,
a local folder or S3) and its location is also a tag on the MLflow model version.
Pipeline steps and release hooks append events (evaluated, alias moved, canary step,
rollback) with :func:`append_event`.

Standard library and boto3 only: Lambda release hooks import this module, and their
runtime has nothing else (no pyarrow, no pydantic). Writes replace the whole document
atomically (rename locally, one PUT on S3); appends are read-modify-write, so one
writer per model version at a time (the pipeline runs its steps in sequence).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rankops.documents import read_text, write_text
from rankops.errors import DataError, LakeError

SCHEMA_VERSION = 1


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class LineageRecord:
    """Everything needed to say exactly how a model version was made and where it went."""

    model_name: str
    model_version: str
    dataset_hash: str
    dataset_manifest_uri: str
    feature_set_version: str
    run_id: str
    code_version: str
    pipeline_execution_id: str
    created_at: str = field(default_factory=now_iso)
    details: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineageRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_uri(artifacts_root: str, model_name: str, version: str) -> str:
    """Where the record of ``model_name`` version ``version`` lives under the artifacts zone."""
    return f"{artifacts_root.rstrip('/')}/lineage/{model_name}/v{version}.json"


def read_record(artifacts_root: str, model_name: str, version: str, s3: Any = None) -> LineageRecord:
    uri = record_uri(artifacts_root, model_name, version)
    text = read_text(uri, s3)
    if text is None:
        raise LakeError(f"no lineage record for {model_name} version {version} at {uri}")
    return LineageRecord.from_dict(json.loads(text))


def write_record(artifacts_root: str, record: LineageRecord, s3: Any = None) -> str:
    """Create the record, or merge into an existing one (events kept, new ones appended):
    a re-run of the same pipeline step never loses history."""
    uri = record_uri(artifacts_root, record.model_name, record.model_version)
    existing = read_text(uri, s3)
    if existing is not None:
        old = LineageRecord.from_dict(json.loads(existing))
        seen = {json.dumps(e, sort_keys=True) for e in old.events}
        record.events = old.events + [e for e in record.events if json.dumps(e, sort_keys=True) not in seen]
        record.created_at = old.created_at
        record.details = {**old.details, **record.details}
    write_text(uri, json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str), s3)
    return uri


def append_event(
    artifacts_root: str,
    model_name: str,
    version: str,
    event_type: str,
    details: dict[str, Any] | None = None,
    at: str | None = None,
    s3: Any = None,
) -> LineageRecord:
    """Append one event (``release``, ``alias``, ``rollback``, ...) to a version's record."""
    if not event_type:
        raise DataError("a lineage event needs a type (e.g. 'release')")
    record = read_record(artifacts_root, model_name, version, s3)
    record.events.append({"type": event_type, "at": at or now_iso(), **(details or {})})
    write_text(
        record_uri(artifacts_root, model_name, version),
        json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str),
        s3,
    )
    return record
