"""The offline feature store: build it with Spark (incrementally or as a backfill),
validate before publishing, read it back for materialization.

Layout: ``features/<feature_set>/<version>/<entity>/dt=YYYY-MM-DD/`` (by ``feature_ts``),
one row per entity and change point (see :mod:`rankops.features.spark`), plus
``<version>/_meta/manifest.json`` (what is published: through which time, from what)
and ``<version>/_meta/runs/<run_id>.json`` (one validation report per run, published
or rejected), and ``<version>/_latest/<entity>/as_of=latest/``: the *latest snapshot*,
one row per key, its newest value as of the published-through time (what
materialization reads instead of the history, see :func:`write_latest`).

A run computes the change points in a time window ``(start, end]`` (hour-aligned:
the run for the hour 12:00-13:00 emits the values that become true up to and at
13:00, when that hour's events become visible), reading the events before ``end``
back to the longest feature window before ``start`` (the look-back) and the whole
catalog. A day partition the window touches is rewritten
with the rows of that day outside the window kept, so hourly runs and a backfill
over the same hours give the same rows. Nothing is committed unless every entity
passes validation.
"""

from rankops.features.offline.latest import latest_values, read_offline, write_latest
from rankops.features.offline.names import (
    HOUR,
    LATEST_PARTITION,
    computation_params,
    dataset_name,
    feature_set_version,
    key_column,
    latest_dataset_name,
    manifest_uri,
    meta_uri,
    read_manifest,
)
from rankops.features.offline.runs import BuildResult, build, status_uri
from rankops.features.offline.windows import TimeWindow, data_span, floor_hour, parse_time, resolve_window

__all__ = [
    "HOUR",
    "LATEST_PARTITION",
    "BuildResult",
    "TimeWindow",
    "build",
    "computation_params",
    "data_span",
    "dataset_name",
    "feature_set_version",
    "floor_hour",
    "key_column",
    "latest_dataset_name",
    "latest_values",
    "manifest_uri",
    "meta_uri",
    "parse_time",
    "read_manifest",
    "read_offline",
    "resolve_window",
    "status_uri",
    "write_latest",
]
