"""The processing step: time split, manifest and content hash, channels written and verified."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rankops.config import Settings
from rankops.errors import DataError
from rankops.training.processing import (
    CHANNELS,
    process_frame,
    read_channel,
    read_item_clicks,
    same_dataset,
    write_processed,
)
from tests.conftest import make_settings, ranking_frame


def test_newest_requests_are_the_holdout_and_nothing_is_shuffled(rows: pd.DataFrame, settings: Settings) -> None:
    data = process_frame(rows, settings)
    requests = {n: set(data.channel(n)["request_id"]) for n in CHANNELS}
    total = rows["request_id"].nunique()
    assert len(requests["holdout"]) == round(total * 0.15)
    assert len(requests["validation"]) == round((total - len(requests["holdout"])) * 0.15)
    assert not (requests["train"] & requests["validation"]) and not (requests["validation"] & requests["holdout"])
    assert data.train["ts"].max() <= data.validation["ts"].min() <= data.validation["ts"].max()
    assert data.validation["ts"].max() <= data.holdout["ts"].min()
    for name in CHANNELS:  # row order is the processing order: requests contiguous, never by position
        part = data.channel(name)
        assert part["ts"].is_monotonic_increasing
        positions = part.groupby("request_id", sort=False)["position"].apply(lambda p: p.is_monotonic_increasing)
        assert not positions.all()


def test_the_manifest_describes_each_split(rows: pd.DataFrame, settings: Settings) -> None:
    manifest = process_frame(rows, settings, source={"events": "lake/raw/events"}).manifest
    assert manifest["catalog_size"] == rows["item_id"].nunique()
    assert manifest["source"] == {"events": "lake/raw/events"}
    assert sum(s["rows"] for s in manifest["splits"].values()) == len(rows)
    holdout = manifest["splits"]["holdout"]
    assert holdout["ts_min"] <= holdout["ts_max"] and sum(holdout["labels"].values()) == holdout["rows"]
    assert manifest["holdout_fraction"] == 0.15 and manifest["labels"]["click_weight"] == 1.0
    assert len(manifest["dataset_hash"]) == 64


def test_the_hash_names_the_content_not_the_moment(rows: pd.DataFrame, settings: Settings, tmp_path: Path) -> None:
    first = process_frame(rows, settings)
    again = process_frame(rows.copy(), settings)
    assert first.dataset_hash == again.dataset_hash
    assert first.manifest["created_at"] != "" and first.manifest["splits"] == again.manifest["splits"]
    changed = rows.copy()
    changed.loc[0, "ctr_7d"] += 1e-9
    assert process_frame(changed, settings).dataset_hash != first.dataset_hash
    other_split = make_settings(tmp_path / "h2", training={"holdout_fraction": 0.2})
    assert process_frame(rows, other_split).dataset_hash != first.dataset_hash


def test_channels_round_trip_and_verify_their_digest(rows: pd.DataFrame, settings: Settings, tmp_path: Path) -> None:
    folders = {n: tmp_path / n for n in CHANNELS}
    data = write_processed(process_frame(rows, settings), folders)
    assert set(data.manifest["files"]) == set(CHANNELS)
    assert set(data.manifest["files"]["holdout"]) == {"data.parquet", "item_clicks.parquet"}
    for name in CHANNELS:
        frame, manifest = read_channel(folders[name], name)
        pd.testing.assert_frame_equal(frame, data.channel(name))
        assert manifest["dataset_hash"] == data.dataset_hash
    clicks = read_item_clicks(folders["holdout"])
    before = pd.concat([data.train, data.validation])
    assert clicks.set_index("item_id")["clicks"].sum() == before["clicked"].sum()


def test_tampered_or_mixed_channels_are_refused(rows: pd.DataFrame, settings: Settings, tmp_path: Path) -> None:
    data = process_frame(rows, settings)
    write_processed(data, {n: tmp_path / n for n in CHANNELS})
    tampered = data.train.copy()
    tampered.loc[3, "label"] = 4 - tampered.loc[3, "label"]
    tampered.to_parquet(tmp_path / "train" / "data.parquet", index=False)
    with pytest.raises(DataError, match="does not match its manifest"):
        read_channel(tmp_path / "train", "train")
    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    del manifest["files"]  # without file checksums, the rows' content digest still catches it
    (tmp_path / "train" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="does not match its manifest"):
        read_channel(tmp_path / "train", "train")
    (tmp_path / "validation" / "manifest.json").unlink()
    with pytest.raises(DataError, match=r"no manifest\.json"):
        read_channel(tmp_path / "validation", "validation")
    with pytest.raises(DataError, match="channels come from different datasets"):
        same_dataset({"train": {"dataset_hash": "a" * 64}, "validation": {"dataset_hash": "b" * 64}})


def test_interleaved_requests_are_refused(rows: pd.DataFrame, settings: Settings, tmp_path: Path) -> None:
    data = process_frame(rows, settings)
    write_processed(data, {n: tmp_path / n for n in CHANNELS})
    shuffled = data.train.sample(frac=1.0, random_state=0).reset_index(drop=True)
    shuffled.to_parquet(tmp_path / "train" / "data.parquet", index=False)
    with pytest.raises(DataError, match="not contiguous"):
        read_channel(tmp_path / "train", "train", verify=False)


def test_missing_columns_and_tiny_inputs_are_named(settings: Settings) -> None:
    with pytest.raises(DataError, match=r"lacks columns \['label'\]"):
        process_frame(ranking_frame(30).drop(columns=["label"]), settings)
    with pytest.raises(DataError, match="too few to split"):
        process_frame(ranking_frame(5), settings)
    assert np.isfinite(process_frame(ranking_frame(30), settings).train["ctr_7d"]).all()
