"""Names and places of the offline feature store: the feature-set version, dataset names, the
_meta manifest (see :mod:`rankops.features.offline`)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rankops.errors import LakeError
from rankops.features import registry
from rankops.lake import Lake

if TYPE_CHECKING:
    from rankops.config import Settings


HOUR = timedelta(hours=1)


def computation_params(settings: Settings) -> dict[str, Any]:
    """The settings that change what a stored value means (part of the version hash)."""
    cfg = settings.features
    return {
        "position_bias_eta": cfg.position_bias_eta,
        "ctr_prior_strength": cfg.ctr_prior_strength,
        "contact_prior_strength": cfg.contact_prior_strength,
    }


def feature_set_version(settings: Settings) -> str:
    return registry.feature_set_version(computation_params(settings))


def key_column(entity: str) -> str:
    return registry.ENTITIES[entity].key


def dataset_name(settings: Settings, entity: str) -> str:
    return f"{settings.features.feature_set}/{feature_set_version(settings)}/{entity}"


LATEST_PARTITION = {"as_of": "latest"}


def latest_dataset_name(settings: Settings, entity: str) -> str:
    """The entity's latest snapshot: one fixed partition, replaced atomically by each run."""
    return f"{settings.features.feature_set}/{feature_set_version(settings)}/_latest/{entity}"


def meta_uri(lake: Lake, settings: Settings, *parts: str) -> str:
    return lake.uri("features", settings.features.feature_set, feature_set_version(settings), "_meta", *parts)


def manifest_uri(lake: Lake, settings: Settings) -> str:
    return meta_uri(lake, settings, "manifest.json")


def read_manifest(lake: Lake, settings: Settings) -> dict[str, Any]:
    uri = manifest_uri(lake, settings)
    if not lake.exists(uri):
        raise LakeError(
            f"no published features for version {feature_set_version(settings)}; run `rankops features build` first"
        )
    manifest: dict[str, Any] = lake.read_json(uri)
    return manifest


def empty_table(entity: str) -> pa.Table:
    key = registry.ENTITIES[entity].key
    fields = [(key, pa.string()), ("feature_ts", pa.timestamp("us", tz="UTC"))]
    fields += [(j, pa.string()) for j in registry.join_keys(entity)]
    fields += [(n, pa.float64()) for n in registry.stored_names(entity)]
    return pa.schema(fields).empty_table()
