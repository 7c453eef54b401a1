"""Bring your own data: LightGBM text files in, and exactly plain lightgbm.train's NDCG out."""

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from rankops.cli import main
from rankops.training import metrics


def write_letor(path: Path, queries: int, seed: int) -> None:
    """svmlight rows (``label idx:value``, zeros omitted) and ``<path>.query`` sizes, as in
    LightGBM's examples/lambdarank."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 30, queries)
    x = np.round(rng.random((int(sizes.sum()), 12)), 4)
    x[rng.random(x.shape) < 0.2] = 0.0
    utility = x[:, 0] * 3 + x[:, 1] - x[:, 2] + rng.normal(0, 0.5, len(x))
    labels = np.clip(np.floor(utility), 0, 4).astype(int)
    lines = [
        " ".join([str(y)] + [f"{j + 1}:{v:g}" for j, v in enumerate(row) if v])
        for y, row in zip(labels, x, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    Path(f"{path}.query").write_text("\n".join(str(s) for s in sizes) + "\n")


@pytest.fixture
def letor(tmp_path: Path) -> tuple[Path, Path]:
    train, valid = tmp_path / "rank.train", tmp_path / "rank.test"
    write_letor(train, 150, seed=1)
    write_letor(valid, 40, seed=2)
    return train, valid


def byo(tmp_path: Path, train: Path, valid: Path, *extra: str) -> list[str]:
    return [
        "--home", str(tmp_path / "home"), "train",
        "--train", str(train), "--train-query", f"{train}.query",
        "--valid", str(valid), "--valid-query", f"{valid}.query", *extra,
    ]  # fmt: skip


def test_ndcg_equals_plain_lightgbm_on_the_same_files(
    tmp_path: Path, letor: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid = letor
    params = {
        "num_leaves": 15,
        "min_data_in_leaf": 5,
        "max_bin": 63,
        "eval_at": [1, 3, 5],
        "seed": 11,
        "num_boost_round": 80,
    }
    assert main([*byo(tmp_path, train, valid, "--params", json.dumps(params))]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    used = dict(out["params"])
    rounds = used.pop("num_boost_round")
    assert used["seed"] == 11 and used["max_bin"] == 63 and used["ndcg_eval_at"] == [1, 3, 5]
    dtrain = lgb.Dataset(str(train))  # LightGBM's own loader finds rank.train.query itself
    dvalid = lgb.Dataset(str(valid), reference=dtrain)
    plain = lgb.train(used, dtrain, num_boost_round=rounds, valid_sets=[dvalid], valid_names=["valid"])

    assert out["best_iteration"] == plain.best_iteration > 1
    sizes = np.loadtxt(f"{valid}.query", dtype=int)
    labels = dvalid.get_label()
    plain_scores = plain.predict(str(valid), num_iteration=plain.best_iteration)
    for k in (1, 3, 5):
        assert out[f"ndcg@{k}"] == pytest.approx(plain.best_score["valid"][f"ndcg@{k}"], abs=1e-9)
        assert out[f"ndcg@{k}"] == metrics.ndcg_at_k(labels, plain_scores, sizes, k)
        assert out["lightgbm_valid"][f"ndcg@{k}"] == plain.best_score["valid"][f"ndcg@{k}"]
    assert out["rows"] == {"train": int(np.loadtxt(f"{train}.query").sum()), "valid": int(sizes.sum())}
    assert 0 < out["map@20"] <= 1


def test_the_model_can_be_saved(tmp_path: Path, letor: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    train, valid = letor
    model = tmp_path / "out" / "model.txt"
    assert main([*byo(tmp_path, train, valid, "--params", '{"num_boost_round": 5}', "--model-out", str(model))]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == str(model)
    assert lgb.Booster(model_file=str(model)).num_trees() == out["best_iteration"] <= 5


def test_bad_files_are_one_line_errors(
    tmp_path: Path, letor: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid = letor
    Path(f"{valid}.query").write_text("10\n10\n")
    assert main(byo(tmp_path, train, valid)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "covers 20 rows but" in err
    Path(f"{valid}.query").write_text("10\nten\n")
    assert main(byo(tmp_path, train, valid)) == 2
    assert "expected one integer per line" in capsys.readouterr().err
    assert main(byo(tmp_path, train, tmp_path / "missing.txt")) == 2
    assert "query file" in capsys.readouterr().err


def test_file_mode_needs_all_four_files(tmp_path: Path, letor: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    train, _ = letor
    assert main(["--home", str(tmp_path), "train", "--train", str(train)]) == 2
    assert "file mode needs --train-query, --valid, --valid-query as well" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "train", "--params", "{}"]) == 2
    assert "--params and --model-out belong to file mode" in capsys.readouterr().err
    assert main([*byo(tmp_path, train, train, "--params", "[1]")]) == 2
    assert "--params: expected a JSON object" in capsys.readouterr().err
