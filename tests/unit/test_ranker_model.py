"""The ranker model type: what ``save_model`` writes ``load_model`` reads back, and a model
directory that names a pickled class is refused without being unpickled."""

import pickle
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml

from rankops import ranker_model
from rankops.errors import ModelError


def tiny_booster() -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.random((100, 3)), columns=["price", "ctr_7d", "category_match"])
    data = lgb.Dataset(x.to_numpy(), label=rng.random(100), feature_name=list(x.columns))
    return lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1}, data, num_boost_round=2), x


class _Marker:
    """Unpickling this writes a file: proof that a loader executed code from the model folder."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path(self.path).write_text, ("unpickled",))


def test_save_then_load_is_the_same_booster(tmp_path: Path) -> None:
    booster, x = tiny_booster()
    ranker_model.save_model(booster, tmp_path / "model", x.head(3))
    loaded = ranker_model.load_model(tmp_path / "model")
    assert loaded.model_to_string() == booster.model_to_string()
    assert loaded.feature_name() == ["price", "ctr_7d", "category_match"]


def test_a_pickled_model_class_is_refused_unopened(tmp_path: Path) -> None:
    booster, x = tiny_booster()
    folder = tmp_path / "model"
    ranker_model.save_model(booster, folder, x.head(3))
    marker = tmp_path / "marker"
    (folder / "model.pkl").write_bytes(pickle.dumps(_Marker(str(marker))))
    doc = yaml.safe_load((folder / "MLmodel").read_text())
    doc["flavors"]["lightgbm"].update(model_class="lightgbm.sklearn.LGBMRanker", data="model.pkl")
    (folder / "MLmodel").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelError, match=r"holds a lightgbm.sklearn.LGBMRanker \(a pickle\)"):
        ranker_model.load_model(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("mlmodel", "message"),
    [
        (None, "no MLmodel file"),
        ("flavors: {}\n", "no 'lightgbm' flavor"),
        ("flavors: [", "not a readable MLmodel"),
        ("- a list\n", "not a readable MLmodel file: it has no 'flavors' mapping"),
    ],
)
def test_a_folder_without_a_lightgbm_model_names_the_problem(tmp_path: Path, mlmodel: str | None, message: str) -> None:
    tmp_path.joinpath("model").mkdir()
    if mlmodel is not None:
        (tmp_path / "model" / "MLmodel").write_text(mlmodel)
    with pytest.raises(ModelError, match=message):
        ranker_model.load_model(tmp_path / "model")


def test_a_model_directory_loads_without_importing_mlflow(tmp_path: Path) -> None:
    """A serving container reads its model folder at every start (scale-out, each blue/green
    fleet): importing MLflow there would cost seconds of CPU and buy nothing. Checked in a fresh
    interpreter (this one has MLflow loaded already), with the container entrypoint's module imports."""
    booster, x = tiny_booster()
    ranker_model.save_model(booster, tmp_path / "model", x.head(3))
    probe = (
        "import sys; from pathlib import Path; import sagemaker_jobs.serve.entry; from rankops import ranker_model; "
        f"b = ranker_model.load_model(Path({str(tmp_path / 'model')!r})); "
        "print(b.num_trees(), 'mlflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [str(booster.num_trees()), "False"], done.stderr
