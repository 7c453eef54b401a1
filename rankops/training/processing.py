"""The processing step: labelled, point-in-time rows split by time into channels.

Output layout (one folder per channel, as the SageMaker processing job uploads them
and the training job receives them)::

    train/       data.parquet  manifest.json
    validation/  data.parquet  manifest.json      (early stopping)
    holdout/     data.parquet  manifest.json  item_clicks.parquet   (evaluation, gate)

Rows keep the order :func:`rankops.training.dataset.order_rows` gave them: requests
in time order, each request contiguous, its rows in hashed (never logged-position)
order. Every channel carries the same manifest, so a job can check that its inputs
come from one dataset, and each data file's SHA-256 (recorded in the manifest after
the files are written) is verified when it is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rankops.errors import DataError
from rankops.features import registry
from rankops.features.offline import feature_set_version
from rankops.monitoring.drift import CONTEXT_CATEGORY, reference_histograms
from rankops.training.dataset import split_by_time
from rankops.training.manifest import MANIFEST_FILE, build_manifest, frame_digest

if TYPE_CHECKING:
    from rankops.config import Settings

CHANNELS = ("train", "validation", "holdout")
DATA_FILE = "data.parquet"
ITEM_CLICKS_FILE = "item_clicks.parquet"
REQUIRED_COLUMNS = ("request_id", "ts", "item_id", "label")


@dataclass(frozen=True)
class ProcessedDataset:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    item_clicks: pd.DataFrame  # item_id, clicks: clicks each item got before the holdout
    manifest: dict[str, Any]

    def channel(self, name: str) -> pd.DataFrame:
        return {"train": self.train, "validation": self.validation, "holdout": self.holdout}[name]

    @property
    def dataset_hash(self) -> str:
        return str(self.manifest["dataset_hash"])


def hashed_settings(settings: Settings) -> dict[str, Any]:
    """The configuration that changes what the dataset is (part of its hash)."""
    return {
        "feature_set_version": feature_set_version(settings),
        "features": registry.model_features(),
        "labels": settings.labels.model_dump(),
        "holdout_fraction": settings.training.holdout_fraction,
        "valid_fraction": settings.training.valid_fraction,
    }


def process_frame(frame: pd.DataFrame, settings: Settings, source: Mapping[str, str] | None = None) -> ProcessedDataset:
    """Split a training frame (from ``build_training_frame``) by time and describe it."""
    missing = [c for c in (*REQUIRED_COLUMNS, "clicked") if c not in frame]
    if missing:
        raise DataError(f"training frame lacks columns {missing}; build it with build_training_frame")
    split = split_by_time(frame, settings.training.holdout_fraction, settings.training.valid_fraction)
    before = pd.concat([split.train, split.valid], ignore_index=True)
    clicks = before.groupby("item_id", sort=True)["clicked"].sum().astype(np.float64)
    item_clicks = pd.DataFrame({"item_id": clicks.index.astype(str), "clicks": clicks.to_numpy()})
    splits = {"train": split.train, "validation": split.valid, "holdout": split.holdout}
    extra = {
        "catalog_size": int(frame["item_id"].nunique()),
        "source": dict(source or {}),
        "created_at": datetime.now(UTC).isoformat(),
        # what served traffic is compared with (rankops.monitoring.drift); derived from the rows, so not hashed
        "reference": reference_histograms(
            split.train, registry.model_features(), [CONTEXT_CATEGORY] if CONTEXT_CATEGORY in frame else []
        ),
    }
    manifest = build_manifest(splits, hashed_settings(settings), extra)
    return ProcessedDataset(split.train, split.valid, split.holdout, item_clicks, manifest)


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    write(tmp)
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def write_channels(
    channels: Mapping[str, tuple[Path, pd.DataFrame, dict[str, pd.DataFrame]]], manifest: Mapping[str, Any]
) -> dict[str, Any]:
    """``{name: (folder, rows, extra tables)}``: every data file first, then the manifest, with
    each file's SHA-256 under ``files``, into every channel (a channel without a manifest is
    incomplete and unreadable). Returns the manifest as written."""
    for folder, frame, extra in channels.values():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST_FILE).unlink(missing_ok=True)
        _write_atomic(folder / DATA_FILE, lambda p, f=frame: f.to_parquet(p, index=False, compression="zstd"))
        for name, table in extra.items():
            _write_atomic(folder / name, lambda p, t=table: t.to_parquet(p, index=False))
    files = {
        channel: {name: file_sha256(folder / name) for name in (DATA_FILE, *extra)}
        for channel, (folder, _, extra) in channels.items()
    }
    written = {**manifest, "files": files}
    text = json.dumps(written, indent=2, sort_keys=True)
    for folder, _, _ in channels.values():
        _write_atomic(folder / MANIFEST_FILE, lambda p: p.write_text(text))
    return written


def write_processed(dataset: ProcessedDataset, folders: Mapping[str, Path]) -> ProcessedDataset:
    """Write each channel into ``folders[channel]``; the dataset with its manifest as written."""
    channels = {
        name: (
            folders[name],
            dataset.channel(name),
            {ITEM_CLICKS_FILE: dataset.item_clicks} if name == "holdout" else {},
        )
        for name in CHANNELS
    }
    return replace(dataset, manifest=write_channels(channels, dataset.manifest))


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"{folder} has no {MANIFEST_FILE}: not a complete channel written by the processing job")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def read_channel(folder: Path, name: str, verify: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One channel's rows and manifest. The data file is checked against the SHA-256 the
    manifest records (or, for a manifest without file checksums, the rows' content digest)."""
    manifest = read_manifest(folder)
    data = folder / DATA_FILE
    if not data.is_file():
        raise DataError(f"{folder} has a manifest but no {DATA_FILE}")
    checksum = manifest.get("files", {}).get(name, {}).get(DATA_FILE)
    if verify and checksum is not None and checksum != file_sha256(data):
        raise _mismatch(data, name, manifest)
    frame = pd.read_parquet(data)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise DataError(f"{data} lacks columns {missing}")
    if verify and checksum is None and manifest.get("splits", {}).get(name, {}).get("digest") != frame_digest(frame):
        raise _mismatch(data, name, manifest)
    check_contiguous(frame, str(data))
    return frame, manifest


def _mismatch(data: Path, name: str, manifest: Mapping[str, Any]) -> DataError:
    dataset = str(manifest.get("dataset_hash", "?"))[:12]
    return DataError(
        f"{data} does not match its manifest (split {name!r} of dataset {dataset}): "
        "the channel was modified or mixed with another dataset's files"
    )


def check_contiguous(frame: pd.DataFrame, where: str) -> None:
    """Rows of a request must be contiguous (LightGBM's query groups and the metrics rely on it)."""
    ids = frame["request_id"].to_numpy()
    runs = int(np.count_nonzero(ids[1:] != ids[:-1]) + 1) if len(ids) else 0
    if runs != frame["request_id"].nunique():
        raise DataError(f"{where}: rows of a request are not contiguous; keep the processing job's row order")


def read_item_clicks(folder: Path) -> pd.DataFrame:
    path = folder / ITEM_CLICKS_FILE
    if not path.is_file():
        raise DataError(f"{folder} has no {ITEM_CLICKS_FILE}; the holdout channel comes from the processing job")
    return pd.read_parquet(path)


def same_dataset(manifests: Mapping[str, Mapping[str, Any]]) -> str:
    """The one dataset hash shared by every channel, or a DataError naming the mismatch."""
    hashes = {name: str(m.get("dataset_hash")) for name, m in manifests.items()}
    if len(set(hashes.values())) != 1:
        detail = ", ".join(f"{n}={h[:12]}" for n, h in sorted(hashes.items()))
        raise DataError(f"channels come from different datasets ({detail}); run one processing job for all")
    return next(iter(hashes.values()))
