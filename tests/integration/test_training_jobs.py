"""The three SageMaker jobs through their entrypoints, on the contract laid out in a temp folder:
processing (real Spark) -> training (real LightGBM, MLflow sqlite) -> evaluation (gate, aliases,
lineage). Then the registry's life: idempotent re-runs, reproducibility, a rejected challenger,
a challenger awaiting release, promotion with `previous`, archiving."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from rankops import integrity, lineage, ranker_model, registry
from rankops.config import Settings
from rankops.errors import DataError
from rankops.features import registry as features
from rankops.lake import Lake
from rankops.sagemaker_contract import layout_training, processing_paths, training_paths
from rankops.scoring import compiled
from rankops.serving.model import load_version
from rankops.training import loop_guard
from rankops.training.jobs import evaluation, processing, training
from sagemaker_jobs.evaluation import entry as evaluation_entry
from sagemaker_jobs.processing import entry as processing_entry
from sagemaker_jobs.training import entry as training_entry
from tests.conftest import REPO, MarketHome, make_settings

OPT = Path("opt/ml")


@dataclass
class Run:
    settings: Settings
    environ: dict[str, str]
    base: Path
    outputs: dict[str, dict[str, Any]]

    @property
    def processed(self) -> Path:
        return self.base / "processing" / OPT / "processing/output"

    @property
    def model_dir(self) -> Path:
        return self.base / "training" / OPT / "model"


def environ_for(home: Path, market: MarketHome) -> dict[str, str]:
    """What a job container receives: lake locations (the market's raw and features zones,
    artifacts of our own) and a home for MLflow; no other RANKOPS_* state."""
    lake = market.lake
    return {
        "RANKOPS_HOME": str(home),
        "RANKOPS_LAKE__RAW": lake.zone_uri("raw"),
        "RANKOPS_LAKE__FEATURES": lake.zone_uri("features"),
        "RANKOPS_LAKE__ARTIFACTS": str(home / "artifacts"),
        "RANKOPS_SPARK__MASTER": "local[2]",
        "RANKOPS_SPARK__SHUFFLE_PARTITIONS": "4",
        "RANKOPS_PIPELINE_EXECUTION_ID": "exec-1",
        "RANKOPS_CODE_VERSION": "test-sha",
    }


def settings_for(home: Path, env: dict[str, str]) -> Settings:
    """The settings a job with ``env`` loads, for the test's own assertions."""
    zones = {z: env[f"RANKOPS_LAKE__{z.upper()}"] for z in ("raw", "features", "artifacts")}
    return make_settings(home, lake=zones)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, market: MarketHome, spark) -> Run:  # type: ignore[no-untyped-def]
    """One pipeline run through the entrypoints, wired the way the pipeline wires S3 locations."""
    home = tmp_path_factory.mktemp("jobs-home")
    base = tmp_path_factory.mktemp("jobs-run")
    env = environ_for(home, market)
    config = ["--config", str(REPO / "rankops.toml")]
    outputs: dict[str, dict[str, Any]] = {}
    assert processing_entry.main(["--base-dir", str(base / "processing"), *config], env) == 0
    processed = base / "processing" / OPT / "processing/output"
    train_env = {
        **env,
        **layout_training(
            base / "training",
            {"train": processed / "train", "validation": processed / "validation"},
            {"num_boost_round": 200},
        ),
    }
    assert training_entry.main(["--base-dir", str(base / "training"), *config], train_env) == 0
    outputs["training"] = json.loads((base / "training" / OPT / "output/data/training.json").read_text())
    argv = ["--base-dir", str(base / "evaluation"), "--model-dir", str(base / "training" / OPT / "model")]
    argv += ["--holdout-dir", str(processed / "holdout"), *config]
    assert evaluation_entry.main(argv, env) == 0
    outputs["evaluation"] = json.loads(
        (base / "evaluation" / OPT / "processing/output/evaluation/evaluation.json").read_text()
    )
    settings = settings_for(home, env)
    return Run(settings, env, base, outputs)


def test_processing_writes_channels_with_one_manifest(first: Run) -> None:
    manifests = [
        json.loads((first.processed / c / "manifest.json").read_text()) for c in ("train", "validation", "holdout")
    ]
    assert len({m["dataset_hash"] for m in manifests}) == 1
    manifest = manifests[0]
    splits = manifest["splits"]
    assert splits["train"]["ts_max"] <= splits["validation"]["ts_min"] <= splits["holdout"]["ts_min"]
    assert splits["holdout"]["requests"] == pytest.approx(0.15 * sum(s["requests"] for s in splits.values()), abs=1)
    lake = Lake.from_settings(first.settings)
    assert lake.read_json(processing.manifest_uri(lake, manifest["dataset_hash"])) == manifest
    holdout = pd.read_parquet(first.processed / "holdout" / "data.parquet")
    assert set(holdout["label"].unique()) <= set(range(first.settings.labels.max_label + 1))


def test_training_fills_the_model_dir_with_a_servable_model(first: Run) -> None:
    from rankops.serving.model import load_from_dir

    out = first.outputs["training"]
    assert (out["version"], out["fallback_version"], out["reused"]) == ("1", "1", False)
    loaded = load_from_dir(first.model_dir)
    assert loaded.version == "1" and loaded.feature_names == features.model_features()
    fallback = load_from_dir(first.model_dir / "fallback")
    assert fallback.version == "1" and len(fallback.feature_names) < len(loaded.feature_names)
    assert out["best_iteration"] > 1 and 0 < out["valid_metrics"]["ndcg@10"] <= 1
    assert {"read", "train", "train_fallback", "compile", "mlflow", "save"} <= set(out["seconds"])
    # compiled at registration, beside each model, verified at load: the server scores with it
    for model in (loaded, fallback):
        assert model.engine == "lleaves", model.scorer and model.scorer.reason


def test_training_logs_a_complete_run(first: Run) -> None:
    client, _ = registry.connect(first.settings)
    version = client.get_model_version(first.settings.mlflow.model_name, "1")
    tags = version.tags
    assert tags["code_version"] == "test-sha" and tags["pipeline_execution_id"] == "exec-1"
    assert tags["dataset_hash"] == first.outputs["evaluation"]["dataset_hash"]
    assert tags["feature_set_version"].startswith("v") and len(tags[registry.IDEMPOTENCY_TAG]) == 64
    run = client.get_run(version.run_id)
    assert run.data.params["objective"] == "lambdarank" and run.data.params["num_boost_round"] == "200"
    assert run.data.params["seed"] == "42" and "fallback.num_leaves" in run.data.params
    history = client.get_metric_history(version.run_id, "valid_ndcg_at_10")
    assert len(history) >= first.outputs["training"]["best_iteration"]
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "model")}
    assert {"model/feature_importance.png", "model/feature_importance.json"} <= artifacts
    assert client.list_artifacts(version.run_id, "dataset")[0].path == "dataset/manifest.json"
    logged = mlflow.models.get_model_info(f"models:/{first.settings.mlflow.model_name}/1")
    assert logged.signature is not None and logged.saved_input_example_info is not None
    # each model's best_iteration is its own: the fallback has a fixed size, no early stopping
    fallback = client.get_model_version(registry.fallback_model_name(first.settings), "1")
    assert tags["best_iteration"] == str(first.outputs["training"]["best_iteration"])
    assert fallback.tags["best_iteration"] == str(first.settings.training.fallback.num_boost_round)
    assert fallback.tags["best_iteration"] != tags["best_iteration"]
    assert run.data.tags["fallback.best_iteration"] == fallback.tags["best_iteration"]
    # the compiled artifacts: their compiler, target and SHA-256 as tags, the files in the run
    for info, folder in ((version, first.model_dir), (fallback, first.model_dir / "fallback")):
        record = json.loads((folder / "compiled" / "compiled.json").read_text())
        assert info.tags["compiled.compiler"] == "lleaves" and info.tags["compiled.sha256"] == record["sha256"]
        assert info.tags["compiled.compiler_version"] == record["compiler_version"] != "missing"
        assert info.tags["compiled.target_triple"] == record["target_triple"]
        served = load_version(first.settings, info.version, "champion", info.name)  # as the server loads a version
        assert served.engine == "lleaves", served.scorer and served.scorer.reason


def test_training_logs_the_score_reference_the_drift_job_reads(first: Run) -> None:
    from rankops.feedback.record import to_table
    from rankops.monitoring.score_drift import load_references, score_kl
    from rankops.training.processing import read_channel

    references = load_references(first.settings, ["1", "99"])
    assert references["99"] is None, "a version that does not exist has no reference"
    reference = references["1"]
    assert reference is not None
    valid, _ = read_channel(first.processed / "validation", "validation")
    assert reference["rows"] == len(valid) and sum(reference["shares"]) == pytest.approx(1.0)
    # the model's own validation scores, served as answers, sit on the reference: KL about 0
    model = ranker_model.load_model(first.model_dir)
    scores = model.predict(valid[features.model_features()])
    now = datetime.now(UTC)
    rows = [{"request_id": f"r{k}", "ts": now, "user_id": "u", "context": "{}", "items": [f"i{j}" for j in range(10)],
             "scores": [float(s) for s in scores[k * 10 : k * 10 + 10]], "propensities": [1.0] * 10,
             "variant": "champion", "model_version": "1", "fallback_level": "champion"}
            for k in range(len(scores) // 10)]  # fmt: skip
    assert score_kl(to_table(rows), references)["1"]["kl"] < 0.01


def test_evaluation_gates_records_and_moves_aliases(first: Run) -> None:
    doc = first.outputs["evaluation"]
    k = "ndcg@10"
    assert doc["decision"] == "promote" and doc["champion"] is None
    assert doc["reasons"][1] == "no champion yet: only the absolute floor applies"
    assert doc["thresholds"]["ndcg_floor"] == first.settings.gate.ndcg_floor
    metrics = doc["metrics"]
    assert metrics["challenger"]["overall"][k] > metrics["baselines"]["rule"]["overall"][k]
    assert metrics["challenger"]["overall"][k] > metrics["baselines"]["popularity"]["overall"][k]
    assert metrics["challenger"]["overall"][k] > metrics["baselines"]["random"]["overall"][k] + 0.1
    assert {"item_age/new", "item_age/old"} <= set(metrics["challenger"]["segments"])
    assert any(s.startswith("category/") for s in metrics["challenger"]["segments"])
    settings = first.settings
    assert registry.aliases(settings) == {"champion": "1"}
    assert registry.aliases(settings, registry.fallback_model_name(settings)) == {"champion": "1"}
    assert doc["gate_uri"] == _gate_uri(first)
    assert Lake.from_settings(settings).read_json(doc["gate_uri"]) == doc
    client, _ = registry.connect(settings)
    version = client.get_model_version(settings.mlflow.model_name, "1")
    assert version.tags["gate_decision"] == "promote" and float(version.tags["ndcg_at_10"]) > 0.3
    assert client.get_run(version.run_id).data.tags["gate_decision"] == "promote"
    assert client.get_run(version.run_id).data.metrics["holdout_ndcg_at_10"] == pytest.approx(
        metrics["challenger"]["overall"][k]
    )
    rule = client.get_model_version(registry.rule_model_name(settings), doc["rule_version"])
    assert rule.tags["gate_decision"] == "baseline"
    # the gate recorded every file it judged: what the release step and the server check
    model_dir = first.base / "training" / OPT / "model"
    files = integrity.folder_digests(model_dir)
    assert doc["artifacts"]["files"] == files and "fallback/model.lgb" in files
    assert doc["artifacts"]["tree_sha256"] == integrity.tree_digest(files)
    assert version.tags[integrity.GATE_TAG] == files["model.lgb"]
    fallback = client.get_model_version(registry.fallback_model_name(settings), "1")
    assert fallback.tags[integrity.GATE_TAG] == files["fallback/model.lgb"]
    assert registry.load_version_booster(settings, "1").num_trees() > 0, "the registry's copy is what was gated"


def _gate_uri(run: Run) -> str:
    """The evaluation's gate record: under the version's folder, named by the holdout's dataset,
    the evaluation time and the pipeline execution (one record per evaluation)."""
    doc = run.outputs["evaluation"]
    lake = Lake.from_settings(run.settings)
    uri = str(doc["gate_uri"])
    folder = lake.uri("artifacts", "gate", doc["model"], f"v{doc['version']}")
    assert uri.startswith(folder + "/")
    assert re.fullmatch(rf"{doc['dataset_hash'][:16]}-\d{{8}}T\d{{12}}Z-exec-1\.json", uri[len(folder) + 1 :]), uri
    return uri


def test_lineage_ties_data_features_run_and_version(first: Run) -> None:
    settings = first.settings
    root = Lake.from_settings(settings).zone_uri("artifacts")
    record = lineage.read_record(root, settings.mlflow.model_name, "1")
    version = registry.connect(settings)[0].get_model_version(settings.mlflow.model_name, "1")
    assert record.dataset_hash == first.outputs["evaluation"]["dataset_hash"]
    assert Path(record.dataset_manifest_uri).is_file()
    assert record.feature_set_version == version.tags["feature_set_version"]
    assert record.run_id == version.run_id and record.code_version == "test-sha"
    assert [e["type"] for e in record.events] == ["registered", "evaluated", "aliases"]
    assert record.events[1]["gate"] == _gate_uri(first)
    assert version.tags["lineage_uri"] == lineage.record_uri(root, settings.mlflow.model_name, "1")


def test_the_registry_lifecycle(first: Run, spark, tmp_path: Path, market: MarketHome) -> None:  # type: ignore[no-untyped-def]
    """Fresh registry, same logs: reproducible, idempotent, gated, promoted, archived."""
    env = environ_for(tmp_path / "home", market)
    settings = settings_for(tmp_path / "home", env)
    lake = Lake.from_settings(settings)
    proc = processing_paths({}, tmp_path / "p")
    dataset = processing.run(settings, proc, spark=spark, lake=lake)
    assert dataset.dataset_hash == first.outputs["evaluation"]["dataset_hash"], "same logs and config, same dataset"

    def train(hp: dict[str, Any], name: str) -> training.TrainingOutcome:
        job_env = layout_training(
            tmp_path / name, {"train": proc.output("train"), "validation": proc.output("validation")}
        )
        return training.run(settings, training_paths(job_env, tmp_path / name), hp, code_version="c1")

    def evaluate(model_dir: Path, name: str, on_pass: str | None = None) -> evaluation.EvaluationOutcome:
        paths = processing_paths({}, tmp_path / name, inputs={"model": model_dir, "holdout": proc.output("holdout")})
        return evaluation.run(settings, paths, lake=lake, on_pass=on_pass, code_version="c1")

    # Reproducible: a fresh registry trains exactly the first run's model and measures the same numbers.
    one = train({"num_boost_round": 200}, "t1")
    holdout = dataset.holdout
    ours, theirs = (ranker_model.load_model(d) for d in (Path(one.model_dir), first.model_dir))
    x = holdout[ours.feature_name()].to_numpy(np.float64)
    assert np.array_equal(ours.predict(x), theirs.predict(x))
    evaluated = evaluate(Path(one.model_dir), "e1")
    assert evaluated.report["challenger"]["overall"] == first.outputs["evaluation"]["metrics"]["challenger"]["overall"]

    # Re-evaluating keeps the earlier decision: a new gate record each time.
    again_evaluated = evaluate(Path(one.model_dir), "e1-again")
    assert again_evaluated.gate_uri != evaluated.gate_uri
    assert lake.read_json(evaluated.gate_uri)["version"] == lake.read_json(again_evaluated.gate_uri)["version"] == "1"

    # Idempotent: the same dataset, config, seed and code never make a second version; a local
    # checkout's uncommitted changes (-dirty) do not make an identical re-run a new training.
    again = train({"num_boost_round": "200"}, "t1-again")  # a string, as SageMaker passes it
    assert (again.version, again.reused, again.idempotency_key) == ("1", True, one.idempotency_key)
    dirty = train({"num_boost_round": 200, "code_version": "c1-dirty"}, "t1-dirty")
    assert (dirty.version, dirty.reused) == ("1", True)
    assert [v.version for v in registry.list_versions(settings, [settings.mlflow.model_name])] == ["1"]
    # (read by MLflow's own flavor too: the directories stay standard MLflow models)
    assert mlflow.lightgbm.load_model(again.model_dir).model_to_string() == ours.model_to_string()
    client, _ = registry.connect(settings)  # a reuse brings the registered compiled artifacts along
    for model, folder in ((settings.mlflow.model_name, Path(again.model_dir)),
                          (registry.fallback_model_name(settings), Path(again.model_dir) / "fallback")):  # fmt: skip
        tag = client.get_model_version(model, "1").tags["compiled.sha256"]
        assert compiled.sha256_file(folder / "compiled" / "model.o") == tag
    # ... but other training code is another training, even on the same data and configuration
    key = training.idempotency_key(
        dataset.dataset_hash, settings.training.model_copy(update={"num_boost_round": 200}), 10, "c1"
    )
    assert key == one.idempotency_key
    assert (
        training.idempotency_key(
            dataset.dataset_hash, settings.training.model_copy(update={"num_boost_round": 200}), 10, "c2"
        )
        != key
    )

    # A holdout from another dataset cannot gate the model (its dataset_hash tag must match).
    other_holdout = tmp_path / "other-holdout"
    shutil.copytree(proc.output("holdout"), other_holdout)
    manifest = json.loads((other_holdout / "manifest.json").read_text())
    (other_holdout / "manifest.json").write_text(json.dumps({**manifest, "dataset_hash": "f" * 64}))
    mismatch = processing_paths(
        {}, tmp_path / "e-other", inputs={"model": Path(one.model_dir), "holdout": other_holdout}
    )
    with pytest.raises(
        DataError, match=rf"v1 was trained on dataset {dataset.dataset_hash[:16]} but the holdout comes from f{{16}}"
    ):
        evaluation.run(settings, mismatch, lake=lake, code_version="c1")

    # A much worse challenger (two shallow trees) is registered but rejected; the champion stays.
    weak = train({"num_boost_round": 2, "num_leaves": 2, "learning_rate": 0.01}, "t2")
    archive = tmp_path / "tarred"
    archive.mkdir()
    with tarfile.open(archive / "model.tar.gz", "w:gz") as tar:  # what SageMaker hands the evaluation job
        tar.add(weak.model_dir, arcname=".")
    rejected = evaluate(archive, "e2")
    assert weak.version == "2" and rejected.decision.decision == "reject"
    assert next(c.name for c in rejected.decision.checks if not c.passed) == "ndcg_vs_champion"
    assert rejected.decision.champion_version == "1"
    assert registry.aliases(settings) == {"champion": "1"}
    assert (
        registry.connect(settings)[0].get_model_version(settings.mlflow.model_name, "2").tags["gate_decision"]
        == "reject"
    )

    # A passing challenger in release mode waits under `challenger`; promotion keeps `previous`.
    other = train({"num_boost_round": 200, "seed": 7}, "t3")
    lenient = settings.model_copy(update={"gate": settings.gate.model_copy(update={"max_ndcg_drop_relative": 0.5})})
    paths = processing_paths(
        {}, tmp_path / "e3", inputs={"model": Path(other.model_dir), "holdout": proc.output("holdout")}
    )
    waiting = evaluation.run(lenient, paths, lake=lake, on_pass="challenger", code_version="c1")
    assert waiting.decision.promote and other.version == "3"
    assert registry.aliases(settings) == {"champion": "1", "challenger": "3"}
    assert registry.promote(settings, "3")["champion"] == "1"
    assert registry.aliases(settings) == {"champion": "3", "previous": "1"}

    # The feedback-loop guard's history: v3 carries its ratios to the champion it was judged against,
    # and the next challenger's gate compounds them with its own (v1, the first champion, ends the chain).
    guard3 = lake.read_json(waiting.gate_uri)["loop_guard"]
    assert guard3["releases"] == [] and set(guard3["this_release"]) == set(loop_guard.FIGURES)
    tag3 = json.loads(registry.version_tags(settings, "3")[loop_guard.TAG])
    assert tag3 == {"champion": "1", "ratios": guard3["this_release"]}
    fourth = train({"num_boost_round": 200, "seed": 8}, "t4")
    paths = processing_paths(
        {}, tmp_path / "e4", inputs={"model": Path(fourth.model_dir), "holdout": proc.output("holdout")}
    )
    guard4 = lake.read_json(evaluation.run(lenient, paths, lake=lake, on_pass="", code_version="c1").gate_uri)[
        "loop_guard"
    ]
    assert [(r["version"], r["replaced"]) for r in guard4["releases"]] == [("3", "1")]
    for figure in loop_guard.FIGURES:
        own, before = guard4["this_release"][figure], tag3["ratios"][figure]
        assert guard4["compounded"][figure] == pytest.approx(own * before, abs=1e-5)
    assert registry.aliases(settings) == {"champion": "3", "previous": "1"}  # on_pass "": no alias moves
    record = lineage.append_event(
        lake.zone_uri("artifacts"), settings.mlflow.model_name, "3", "release", {"stage": "canary"}
    )
    assert [e["type"] for e in record.events][-2:] == ["aliases", "release"]

    # Archiving: versions past mlflow.archive_after_days holding no alias; `models list` shows it.
    assert registry.archive_stale(settings) == []
    later = datetime.now(UTC) + timedelta(days=settings.mlflow.archive_after_days + 1)
    archived = {f"{a.name}/{a.version}" for a in registry.archive_stale(settings, now=later)}
    assert f"{settings.mlflow.model_name}/2" in archived
    assert f"{settings.mlflow.model_name}/1" not in archived  # `previous` is an alias: kept
    listed = subprocess.run(
        [sys.executable, "-m", "rankops.cli", "--home", str(tmp_path / "home"), "models", "list", "--json",
         "--name", settings.mlflow.model_name],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    rows = {r["version"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert rows["2"]["archived"] is True and rows["2"]["gate"] == "reject" and rows["2"]["aliases"] == []
    champion = registry.alias_version(settings, "champion")
    assert rows[champion]["archived"] is False and "champion" in rows[champion]["aliases"]


def test_rankops_train_runs_the_jobs_locally(  # type: ignore[no-untyped-def]
    market: MarketHome, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rankops.cli import main

    for key, value in environ_for(tmp_path / "home", market).items():
        monkeypatch.setenv(key, value)
    argv = ["--config", str(REPO / "rankops.toml"), "train", "--alias", "challenger"]
    argv += ["--hyperparameters", '{"num_boost_round": 40}']
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["version"], out["reused"], out["decision"]) == ("1", False, "promote")
    assert out["aliases"]["rankops-ranker"] == {"challenger": "1"}, "release mode: the champion moves later"
    assert out["model"]["ndcg@10"] > out["baselines"]["random"]["ndcg@10"]
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["version"], again["reused"], again["dataset_hash"]) == ("1", True, out["dataset_hash"])
    assert len(list((tmp_path / "home" / "sagemaker").iterdir())) == 2
