"""The scorer: compiled trees only when verified, LightGBM otherwise, the same scores either way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from rankops.scoring import compiled
from rankops.scoring.scorer import MAX_ABS_DIFF, load_scorer


def _booster(seed: int, trees: int = 15) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 5))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take their own branch
    y = np.clip(np.round(np.nan_to_num(x[:, 0]) + rng.normal(0, 0.5, len(x))), 0, 3).astype(int)
    params = {"objective": "lambdarank", "num_leaves": 7, "min_data_in_leaf": 10, "verbosity": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, y, group=[30] * 20), trees), x


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[lgb.Booster, np.ndarray, Path]:
    booster, x = _booster(1)
    folder = tmp_path_factory.mktemp("compiled") / compiled.COMPILED_DIR
    meta = compiled.compile_booster(booster, x, folder)
    assert meta.compiler == "lleaves" and meta.num_trees == booster.num_trees()
    assert meta.sha256 == compiled.sha256_file(folder / compiled.OBJECT_FILE)
    return booster, x, folder


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / compiled.COMPILED_DIR))


def test_verified_artifact_scores_like_lightgbm(artifact: tuple[lgb.Booster, np.ndarray, Path]) -> None:
    booster, x, folder = artifact
    scorer = load_scorer(booster, folder)
    assert scorer.engine == "lleaves", scorer.reason
    rows = np.asfortranarray(x[:200])  # any layout: the scorer hands the native code C-ordered rows
    expected = booster.predict(rows, num_threads=1)
    assert np.max(np.abs(scorer.predict(rows) - expected)) <= MAX_ABS_DIFF
    assert np.max(np.abs(scorer.lightgbm().predict(rows) - expected)) == 0.0
    sample = np.load(folder / compiled.SAMPLE_FILE)
    assert np.isnan(sample[-2]).all() and (sample[-1] == 0).all()  # the all-missing and all-zero rows


def test_corrupted_artifact_is_refused(artifact: tuple[lgb.Booster, np.ndarray, Path], tmp_path: Path) -> None:
    booster, x, folder = artifact
    copy = _copy(folder, tmp_path)
    obj = copy / compiled.OBJECT_FILE
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    scorer = load_scorer(booster, copy)
    assert scorer.engine == "lightgbm" and "SHA-256" in scorer.reason
    assert np.array_equal(scorer.predict(x[:50]), booster.predict(x[:50], num_threads=1))


def test_registry_sha_must_match(artifact: tuple[lgb.Booster, np.ndarray, Path]) -> None:
    booster, _, folder = artifact
    scorer = load_scorer(booster, folder, expected_sha256="0" * 64)
    assert scorer.engine == "lightgbm" and "tag" in scorer.reason


def test_artifact_of_another_model_fails_the_score_check(
    artifact: tuple[lgb.Booster, np.ndarray, Path], tmp_path: Path
) -> None:
    """Intact file, right SHA, right shape, wrong trees: only the sample check can tell."""
    _, x, folder = artifact
    other, _ = _booster(2)
    scorer = load_scorer(other, folder)
    assert scorer.engine == "lightgbm" and "differ from LightGBM" in scorer.reason
    assert np.array_equal(scorer.predict(x[:50]), other.predict(x[:50], num_threads=1))


def test_artifacts_are_inlined_and_older_records_still_load(
    artifact: tuple[lgb.Booster, np.ndarray, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New artifacts are compiled with trees inlined (and say so); one compiled without inlining
    by an older rankops, whose record lacks the field, still loads, verifies and scores."""
    booster, x, folder = artifact
    assert json.loads((folder / compiled.META_FILE).read_text())["inlined"] is True
    monkeypatch.setattr(compiled, "INLINE", False)
    older = tmp_path / "older" / compiled.COMPILED_DIR
    compiled.compile_booster(booster, x, older)
    record = json.loads((older / compiled.META_FILE).read_text())
    assert record.pop("inlined") is False
    (older / compiled.META_FILE).write_text(json.dumps(record))
    scorer = load_scorer(booster, older)
    assert scorer.engine == "lleaves", scorer.reason
    assert np.max(np.abs(scorer.predict(x[:100]) - booster.predict(x[:100], num_threads=1))) <= MAX_ABS_DIFF


def test_tampered_record_or_target_is_refused(artifact: tuple[lgb.Booster, np.ndarray, Path], tmp_path: Path) -> None:
    booster, _, folder = artifact
    copy = _copy(folder, tmp_path)
    record = json.loads((copy / compiled.META_FILE).read_text())
    (copy / compiled.META_FILE).write_text(json.dumps({**record, "target_triple": "aarch64-unknown-linux-gnu"}))
    assert "targets aarch64" in load_scorer(booster, copy).reason
    (copy / compiled.META_FILE).write_text("{not json")
    assert load_scorer(booster, copy).engine == "lightgbm"


def test_no_artifact_scores_with_lightgbm(tmp_path: Path) -> None:
    booster, x = _booster(3, trees=3)
    for folder in (None, tmp_path / "absent"):
        scorer = load_scorer(booster, folder)
        assert scorer.engine == "lightgbm" and scorer.reason == "no compiled artifact"
        assert np.array_equal(scorer.predict(x[:10]), booster.predict(x[:10], num_threads=1))


def test_a_failed_compile_is_a_tag_not_an_artifact(tmp_path: Path) -> None:
    """Registration goes on without a compiled model: the version says why and serves through LightGBM."""
    from rankops.scoring.artifacts import ARTIFACT_TAG, ERROR_TAG, compile_for_registration

    booster, x = _booster(4, trees=2)
    tags = compile_for_registration(booster, x[:, :3], tmp_path / "model", "model")  # too few columns
    assert ARTIFACT_TAG not in tags and "3 columns" in tags[ERROR_TAG]
    assert not (tmp_path / "model").exists()
    assert load_scorer(booster, tmp_path / "model").engine == "lightgbm"
