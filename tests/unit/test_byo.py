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
    assert "--params, --plain-lightgbm and --model-out belong to file mode" in capsys.readouterr().err
    assert main([*byo(tmp_path, train, train, "--params", "[1]")]) == 2
    assert "--params: expected a JSON object" in capsys.readouterr().err


def run_byo(tmp_path: Path, train: Path, valid: Path, params: dict, capsys) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert main([*byo(tmp_path, train, valid, "--params", json.dumps(params))]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def plain_train(used: dict, train: Path, valid: Path) -> tuple[lgb.Booster, lgb.Dataset]:  # type: ignore[type-arg]
    params = dict(used)
    rounds = params.pop("num_boost_round")
    dtrain = lgb.Dataset(str(train))
    dvalid = lgb.Dataset(str(valid), reference=dtrain)
    booster = lgb.train(params, dtrain, num_boost_round=rounds, valid_sets=[dvalid], valid_names=["valid"])
    return booster, dvalid


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ({"early_stopping_round": 2}, "early_stopping_round"),
        ({"n_iter_no_change": 2}, "early_stopping_round"),
        ({"early_stopping_rounds": 2}, "early_stopping_round"),
        ({"random_seed": 7}, "seed"),
        ({"random_state": 7}, "seed"),
    ],
)
def test_the_users_lightgbm_settings_win_as_in_plain_lightgbm(
    tmp_path: Path,
    letor: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    given: dict,
    canonical: str,  # type: ignore[type-arg]
) -> None:
    """rankops used to force early_stopping_round=30 and seed=42 over the user's own names for them."""
    train, valid = letor
    out = run_byo(tmp_path, train, valid, {**given, "num_boost_round": 60, "num_leaves": 15}, capsys)
    (value,) = given.values()
    assert out["params"][canonical] == value
    # plain lightgbm.train with the user's own parameter names (and everything else rankops used)
    theirs = {k: v for k, v in out["params"].items() if k != canonical} | given
    plain, dvalid = plain_train(theirs, train, valid)
    assert out["best_iteration"] == plain.best_iteration
    sizes = np.loadtxt(f"{valid}.query", dtype=int)
    ndcg = metrics.ndcg_at_k(
        dvalid.get_label(), plain.predict(str(valid), num_iteration=plain.best_iteration), sizes, 10
    )
    assert out["ndcg@10"] == ndcg == pytest.approx(plain.best_score["valid"]["ndcg@10"], abs=1e-9)
    default, _ = plain_train({k: v for k, v in out["params"].items() if k != canonical}, train, valid)
    assert default.model_to_string() != plain.model_to_string(), "the setting changed the model"


@pytest.mark.parametrize("change", ["wider", "narrower"])
def test_the_validation_file_may_have_another_highest_feature_index(
    tmp_path: Path, letor: tuple[Path, Path], capsys: pytest.CaptureFixture[str], change: str
) -> None:
    """Plain lightgbm.train accepts it; rankops' scoring used to raise LightGBM's shape check (exit 1)."""
    train, valid = letor
    rows = valid.read_text().splitlines()
    if change == "wider":
        rows[0] += " 20:0.5"  # a feature the training file never has
    else:
        rows = [" ".join(t for t in r.split() if not t.startswith(("11:", "12:"))) for r in rows]
    valid.write_text("\n".join(rows) + "\n")
    out = run_byo(tmp_path, train, valid, {"eval_at": [1, 3, 5]}, capsys)
    for k in (1, 3, 5):
        assert out[f"ndcg@{k}"] == pytest.approx(out["lightgbm_valid"][f"ndcg@{k}"], abs=1e-9)
    plain, _ = plain_train(out["params"], train, valid)
    assert out["best_iteration"] == plain.best_iteration
    assert out["lightgbm_valid"] == {k: float(v) for k, v in plain.best_score["valid"].items()}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"eval_at": "x"}, "--params eval_at: expected positive integer cut-offs like [1, 3, 5], got 'x'"),
        ({"eval_at": []}, "--params eval_at: expected positive integer cut-offs like [1, 3, 5], got []"),
        ({"ndcg_eval_at": [0, 3]}, "--params ndcg_eval_at: expected positive integer cut-offs"),
        ({"eval_at": [1], "ndcg_at": [3]}, "are LightGBM names for the same cut-offs; give one"),
        ({"num_leaves": -3}, "LightGBM rejects the training parameters: Check failed: (num_leaves) > (1)"),
        ({"max_bin": 1}, "LightGBM rejects the training parameters: Check failed: (max_bin) > (1)"),
        ({"objective": "nonsense"}, "Unknown objective type name: nonsense"),
        ({"seed": 1, "random_seed": 2}, "seed=1 and random_seed=2 are LightGBM names for the same setting"),
        ({"early_stopping_round": "soon"}, "early_stopping_round: Input should be a valid integer"),
    ],
)
def test_bad_parameters_are_one_line_errors_naming_the_problem(
    tmp_path: Path,
    letor: tuple[Path, Path],
    capfd: pytest.CaptureFixture[str],
    params: dict,
    message: str,  # type: ignore[type-arg]
) -> None:
    """Exit 2 and exactly one line on stderr (captured at the file descriptor, where LightGBM's
    own `[LightGBM] [Fatal]` line used to appear), naming the parameter, not the data file."""
    train, valid = letor
    assert main([*byo(tmp_path, train, valid, "--params", json.dumps(params))]) == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("rankops: error: "), captured.err
    assert message in captured.err
    assert "[LightGBM]" not in captured.err and "cannot read" not in captured.err


def test_rankops_defaults_are_announced_and_plain_lightgbm_drops_them(
    tmp_path: Path, letor: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid = letor
    given = {"num_leaves": 15, "sub_feature": 0.7, "num_boost_round": 20}
    assert main([*byo(tmp_path, train, valid, "--params", json.dumps(given))]) == 0
    captured = capsys.readouterr()
    (note,) = captured.err.splitlines()
    assert note.startswith("rankops: note: trained with rankops' defaults besides --params: ")
    for added in ("bagging_fraction=0.8", "lambdarank_truncation_level=20", "early_stopping_rounds=30"):
        assert added in note
    assert "feature_fraction" not in note and "num_boost_round" not in note, "set by the user (sub_feature alias)"
    assert json.loads(captured.out.strip().splitlines()[-1])["params"]["bagging_fraction"] == 0.8

    assert main([*byo(tmp_path, train, valid, "--params", json.dumps(given), "--plain-lightgbm")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    out = json.loads(captured.out.strip().splitlines()[-1])
    used = out["params"]
    assert not {"bagging_fraction", "bagging_freq", "feature_fraction", "lambdarank_truncation_level"} & set(used)
    assert "learning_rate" not in used and "min_data_in_leaf" not in used and used["sub_feature"] == 0.7
    booster, dvalid = plain_train(used, train, valid)  # plain lightgbm.train, no early stopping
    scores = booster.predict(str(valid))
    sizes = np.loadtxt(f"{valid}.query", dtype=int)
    for k in out["params"]["ndcg_eval_at"]:
        assert out[f"ndcg@{k}"] == pytest.approx(metrics.ndcg_at_k(dvalid.get_label(), scores, sizes, k), abs=1e-9)
