"""The dataset manifest: what a training set is, and a content hash that names it.

The hash covers the rows (every column, in order) of every split and the split
and label settings, never the time the manifest was written: the same logged
requests, features and configuration always give the same hash. Registration uses
it as part of its idempotency key and lineage starts from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and values, row order included."""
    digest = hashlib.sha256()
    columns = sorted(frame.columns)
    digest.update(json.dumps([(c, str(frame[c].dtype)) for c in columns]).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tobytes())
    return digest.hexdigest()


def split_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Rows, requests, time range and label histogram of one split."""
    labels = frame["label"].value_counts().sort_index() if len(frame) else pd.Series(dtype="int64")
    return {
        "rows": len(frame),
        "requests": int(frame["request_id"].nunique()),
        "ts_min": frame["ts"].min().isoformat() if len(frame) else None,
        "ts_max": frame["ts"].max().isoformat() if len(frame) else None,
        "labels": {str(int(k)): int(v) for k, v in labels.items()},
        "digest": frame_digest(frame),
    }


def build_manifest(
    splits: Mapping[str, pd.DataFrame], settings_part: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest of a set of splits. ``settings_part`` (split fractions, label weights,
    feature-set version, features) enters the hash; ``extra`` (sources, timestamps) does not."""
    summaries = {name: split_summary(frame) for name, frame in splits.items()}
    hashed = {"schema": SCHEMA_VERSION, "splits": {n: s["digest"] for n, s in summaries.items()}, **settings_part}
    dataset_hash = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()
    return {
        "schema": SCHEMA_VERSION,
        "dataset_hash": dataset_hash,
        **dict(settings_part),
        "splits": summaries,
        **dict(extra or {}),
    }
