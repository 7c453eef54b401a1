"""Training sets: logged requests joined point-in-time to their features, labelled,
split by time.

The join is an as-of join in Spark (each impression gets the feature values as
of its request time, never later ones); on-demand features and labels are then
added with the same functions the server and the evaluation use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rankops.errors import DataError
from rankops.features import on_demand, registry
from rankops.features.offline import read_offline
from rankops.lake import Lake
from rankops.training.labels import objective_label

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from rankops.config import Settings

EVENT_COLUMNS = [
    "request_id",
    "ts",
    "user_id",
    "query_category",
    "device",
    "item_id",
    "position",
    "clicked",
    "contacted",
    "revenue",
]


def add_request_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Defaults for missing stored values, then the on-demand features, in place."""
    for f in registry.FEATURES:
        if f.kind != "on_demand" and f.name in frame:
            frame[f.name] = frame[f.name].astype(np.float64).fillna(f.default)
    ts_s = frame["ts"].astype("int64").to_numpy() / 1e9 if len(frame) else np.zeros(0)
    codes = np.array([on_demand.category_code(c) for c in frame["query_category"]], dtype=np.float64)
    stored = {n: frame[n].to_numpy(np.float64) for n in on_demand.input_names()}
    for name, column in on_demand.compute(stored, ts_s, codes).items():
        frame[name] = column
    return frame


def order_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Requests in time order, rows of a request contiguous, and *within* a request in
    a pseudo-random order (a hash of request and item id).

    Never in logged position order: metrics keep the row order for tied scores, so
    position-ordered rows would hand any ranker with ties the logging policy's
    position-biased clicks for free (a coarse model would then look best).
    """
    tiebreak = pd.util.hash_pandas_object(frame[["request_id", "item_id"]], index=False).to_numpy()
    order = np.lexsort((tiebreak, frame["request_id"].to_numpy(), frame["ts"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def build_training_frame(
    spark: SparkSession, lake: Lake, settings: Settings, until: datetime | None = None
) -> pd.DataFrame:
    """Every logged impression with its point-in-time features and its label, ordered by
    request time so the rows of one request are contiguous. ``until`` (the pipeline's data
    snapshot) keeps only requests logged before it, so re-running a snapshot later, after
    more logs arrived, builds the same dataset."""
    from pyspark.sql import functions as F

    from rankops.features import spark as fspark

    events = fspark.read_committed(spark, lake, "raw", "events").select(*EVENT_COLUMNS)
    if until is not None:
        events = events.where(F.col("ts") < F.lit(until))
    joined = fspark.join_all_features(events, read_offline(spark, lake, settings))
    frame: pd.DataFrame = joined.toPandas()
    if frame.empty:
        before = f" before the snapshot {until.isoformat()}" if until is not None else ""
        raise DataError(f"no logged impressions{before} to train on; run `rankops generate` or `rankops ingest` first")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame = order_rows(frame)
    frame = add_request_features(frame)
    frame["label"] = objective_label(
        frame["clicked"].to_numpy(), frame["contacted"].to_numpy(), frame["revenue"].to_numpy(), settings.labels
    )
    return frame


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame


def split_by_time(frame: pd.DataFrame, holdout_fraction: float, valid_fraction: float | None = None) -> Split:
    """Newest ``holdout_fraction`` of requests -> holdout; of the rest, the newest
    ``valid_fraction`` -> validation (early stopping). Never shuffled: the model is
    always judged on requests that happened after everything it learned from."""
    valid_fraction = holdout_fraction if valid_fraction is None else valid_fraction
    first_seen = frame.groupby("request_id", sort=False)["ts"].min().sort_values(kind="stable")
    n = len(first_seen)
    if n < 10:
        raise DataError(f"only {n} requests: too few to split into train, validation and holdout")
    n_holdout = max(1, round(n * holdout_fraction))
    n_valid = max(1, round((n - n_holdout) * valid_fraction))
    order = {rid: i for i, rid in enumerate(first_seen.index)}
    rank = frame["request_id"].map(order).to_numpy()
    train_end, valid_end = n - n_holdout - n_valid, n - n_holdout
    return Split(
        frame[rank < train_end].reset_index(drop=True),
        frame[(rank >= train_end) & (rank < valid_end)].reset_index(drop=True),
        frame[rank >= valid_end].reset_index(drop=True),
    )
