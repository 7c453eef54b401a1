"""The scorer: compiled trees only when verified, LightGBM otherwise, the same scores either way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from rankops.scoring import compiled, native
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


def test_artifacts_are_inlined_small_and_older_records_still_load(
    artifact: tuple[lgb.Booster, np.ndarray, Path], tmp_path: Path
) -> None:
    """New artifacts are inlined and use the small code model (and say so); an object compiled the
    way an older rankops did (lleaves' own compile: large code model, not inlined), whose record
    lacks both fields, still loads, verifies and scores."""
    import lleaves

    booster, x, folder = artifact
    record = json.loads((folder / compiled.META_FILE).read_text())
    small = native.small_model_possible()  # x86-64 (every machine this suite runs on); ARM stays large
    assert record["inlined"] is True and record["code_model"] == ("small" if small else "large")
    older = _copy(folder, tmp_path)
    (older / compiled.OBJECT_FILE).unlink()
    text = tmp_path / "model.txt"
    text.write_text(booster.model_to_string())
    lleaves.Model(model_file=str(text)).compile(
        cache=str(older / compiled.OBJECT_FILE), finline=False, target_cpu="generic", target_cpu_features=""
    )
    data = (older / compiled.OBJECT_FILE).read_bytes()
    assert data != (folder / compiled.OBJECT_FILE).read_bytes()
    for field in ("inlined", "code_model", "code_bytes"):
        record.pop(field)
    (older / compiled.META_FILE).write_text(json.dumps({**record, "sha256": compiled.sha256_bytes(data)}))
    scorer = load_scorer(booster, older)
    assert scorer.engine == "lleaves", scorer.reason
    assert scorer.native is not None and scorer.native.meta.code_model == "large"
    assert np.max(np.abs(scorer.predict(x[:100]) - booster.predict(x[:100], num_threads=1))) <= MAX_ABS_DIFF
    # the small code model maps less code and constants for the same trees
    assert 0 < record_code_bytes(folder) < native.code_bytes(data) or not small
    # a large-code-model object whose record claims the small model is refused by name (loading
    # it the small way would abort the process: its GOT-relative relocations need a GOT)
    claimed = {**record, "sha256": compiled.sha256_bytes(data), "code_model": "small"}
    (older / compiled.META_FILE).write_text(json.dumps(claimed))
    refused = load_scorer(booster, older)
    assert refused.engine == "lightgbm" and "cannot be loaded safely" in refused.reason


def record_code_bytes(folder: Path) -> int:
    return int(json.loads((folder / compiled.META_FILE).read_text())["code_bytes"])


def test_an_unreadable_object_is_refused_before_llvm_loads_it(
    artifact: tuple[lgb.Booster, np.ndarray, Path], tmp_path: Path
) -> None:
    """A record rewritten to match a truncated object (so the SHA-256 check passes): refused by
    name, served by LightGBM, and the process is still alive to say so."""
    booster, x, folder = artifact
    copy = _copy(folder, tmp_path)
    cut = (copy / compiled.OBJECT_FILE).read_bytes()[:4096]
    (copy / compiled.OBJECT_FILE).write_bytes(cut)
    record = json.loads((copy / compiled.META_FILE).read_text())
    (copy / compiled.META_FILE).write_text(json.dumps({**record, "sha256": compiled.sha256_bytes(cut)}))
    scorer = load_scorer(booster, copy)
    assert scorer.engine == "lightgbm" and "could not be loaded" in scorer.reason
    assert np.array_equal(scorer.predict(x[:20]), booster.predict(x[:20], num_threads=1))


def test_native_forest_refuses_rows_of_another_width(artifact: tuple[lgb.Booster, np.ndarray, Path]) -> None:
    booster, x, folder = artifact
    data = (folder / compiled.OBJECT_FILE).read_bytes()
    forest = native.NativeForest(data, booster.num_feature(), "generic", "small")
    with pytest.raises(ValueError, match="rows of 5 features"):
        forest.predict(x[:10, :4])
    assert forest.predict(x[:0]).shape == (0,)


def test_rows_are_scored_in_branch_order_and_answered_in_the_callers(
    artifact: tuple[lgb.Booster, np.ndarray, Path],
) -> None:
    booster, x, folder = artifact
    model = load_scorer(booster, folder).native
    assert model is not None
    assert model.order_column == 0  # the label follows column 0: its splits carry the gain
    rows = x[:200].copy()
    rows[1::7, 0] = 0.5  # ties, beside the missing values the rows already hold
    scores = model.predict(rows)
    assert np.max(np.abs(scores - booster.predict(rows, num_threads=1))) <= MAX_ABS_DIFF
    permutation = np.random.default_rng(3).permutation(len(rows))
    assert np.array_equal(model.predict(rows[permutation]), scores[permutation])  # each row's own score
    as_given = compiled.CompiledModel(model._forest, model.meta, None)  # the same code, rows unsorted
    assert np.array_equal(as_given.predict(rows), scores)
    with pytest.raises(ValueError, match="rows of 5 features"):
        model.predict(rows[:, :4])
    with pytest.raises(ValueError, match="order column 5 is not one of the model's 5 features"):
        compiled.CompiledModel(model._forest, model.meta, 5)


def test_a_model_without_splits_keeps_the_rows_order() -> None:
    x = np.random.default_rng(0).normal(size=(60, 3))
    params = {"objective": "regression", "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, np.ones(60)), 2)
    assert compiled.branch_order_column(booster) is None


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


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"MZ" + bytes(64), "not a 64-bit little-endian ELF"), (b"\x7fELF\x02\x01" + bytes(30), "truncated")],
)
def test_relocations_of_a_non_object_are_a_named_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        native.relocation_types(data)


@pytest.mark.skipif(not native.small_model_possible(), reason="the small code model is built for x86-64")
def test_a_new_artifact_needs_only_rip_relative_relocations(artifact: tuple[lgb.Booster, np.ndarray, Path]) -> None:
    """What makes the one-block load safe for it (rankops.scoring.native)."""
    _, _, folder = artifact
    assert native.relocation_types((folder / compiled.OBJECT_FILE).read_bytes()) == {native.R_X86_64_PC32}
