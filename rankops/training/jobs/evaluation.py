"""Evaluation job (a processing job): score the challenger, the champion, the fallback and
the baselines on one holdout, apply the gate, record everything, move aliases.

Inputs: ``input/model`` (the training job's model folder or its ``model.tar.gz``) and
``input/holdout`` (the processing job's holdout channel, which must come from the dataset the
model was trained on). Output: ``output/evaluation/evaluation.json``. Side effects, all
recorded: the gate decision in the lake's artifacts zone (a new record per evaluation,
``gate/<model>/v<version>/<dataset hash>-<time>[-<execution>].json``) and on the MLflow run
and version; aliases (a passing
challenger gets ``gate.on_pass``; the fallback becomes its model's champion when it
meets the gate's absolute floor: it exists for when the ranker or the aggregate features
are unavailable, so it is not held to the ranker's standard); the lineage record; stale
versions archived.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankops import integrity, lineage, ranker_model, registry
from rankops.errors import DataError, ModelError
from rankops.registry import metric_key
from rankops.scoring import artifacts
from rankops.training import evaluate, gate, loop_guard, rule_model
from rankops.training.evaluate import Holdout
from rankops.training.jobs.processing import manifest_uri
from rankops.training.jobs.training import FALLBACK_DIR, VERSION_FILE
from rankops.training.processing import read_channel, read_item_clicks

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake
    from rankops.sagemaker_contract import ProcessingPaths
    from rankops.scoring.scorer import Scorer

OUTPUT = "evaluation"
OUTPUT_FILE = "evaluation.json"


@dataclass(frozen=True)
class EvaluationOutcome:
    version: str
    fallback_version: str
    decision: gate.GateDecision
    report: dict[str, Any]
    aliases: dict[str, dict[str, str]]
    gate_uri: str
    lineage_uri: str


def model_folder(folder: Path, scratch: Path) -> Path:
    """The MLflow model folder: ``folder`` itself, or its ``model.tar.gz`` extracted into ``scratch``
    (what SageMaker hands a processing job that consumes a training job's model artifact)."""
    archive = folder / "model.tar.gz"
    if archive.is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        folder = scratch
    if not (folder / "MLmodel").is_file() or not (folder / VERSION_FILE).is_file():
        raise ModelError(f"{folder} is not a registered model folder (MLmodel and VERSION); the training job writes it")
    return folder


def _champion_scores(settings: Settings, version: str, frame: Any) -> Any:
    """The champion scored on this holdout; if it cannot be, the job fails (a gate that cannot
    compare on the same holdout must not promote, and must not silently skip the comparison)."""
    from mlflow.exceptions import MlflowException

    try:
        champion, _ = registry.load_booster(settings, registry.CHAMPION)
        scorer = artifacts.scorer_for_version(settings, champion, settings.mlflow.model_name, version, threads=2)
        return evaluate.score_booster(scorer, frame)
    except (MlflowException, OSError) as err:
        raise ModelError(f"cannot load champion v{version} of {settings.mlflow.model_name}: {err}") from err
    except DataError as err:
        raise DataError(f"champion v{version} cannot be scored on this holdout: {err}") from err


def _load(folder: Path) -> tuple[Scorer, str]:
    """The model in ``folder`` with the scorer the server will use (compiled when verified)."""
    booster = ranker_model.load_model(folder)
    return artifacts.scorer_for_dir(booster, folder, threads=2), (folder / VERSION_FILE).read_text().strip()


def gated_artifacts(folder: Path) -> dict[str, Any]:
    """What the gate judged: the SHA-256 of every file of the model folder (ranker, fallback, their
    compiled artifacts), their tree digest, and each model file's digest (the versions' gate tag)."""
    files = integrity.folder_digests(folder)
    model_files = {
        role: files[ranker_model.booster_file(sub).relative_to(folder).as_posix()]
        for role, sub in (("model", folder), ("fallback", folder / FALLBACK_DIR))
    }
    return {"files": files, "tree_sha256": integrity.tree_digest(files), "model_sha256": model_files}


def _metric_tags(overall: dict[str, float], k: int, **extra: str) -> dict[str, str]:
    """Key numbers as version tags (what ``rankops models list`` shows without opening runs)."""
    return {
        metric_key(f"ndcg@{k}"): f"{overall[f'ndcg@{k}']:.4f}",
        metric_key(f"coverage@{k}"): f"{overall[f'coverage@{k}']:.4f}",
        **extra,
    }


def _run_metrics(doc: dict[str, Any]) -> list[Any]:
    """Every number of the evaluation as MLflow metrics: challenger overall and per segment,
    champion, fallback and baselines on this holdout."""
    from mlflow.entities import Metric

    now = int(datetime.now(UTC).timestamp() * 1000)
    report = doc["metrics"]
    named: dict[str, float] = {f"holdout_{m}": v for m, v in report["challenger"]["overall"].items()}
    for segment, values in report["challenger"]["segments"].items():
        named.update({f"segment/{segment}/{m}": v for m, v in values.items()})
    if "champion" in report:
        named.update({f"champion_{m}": v for m, v in report["champion"]["overall"].items()})
    named.update({f"fallback_{m}": v for m, v in report["fallback"]["overall"].items()})
    for base, metrics in report["baselines"].items():
        named.update({f"{base}_{m}": v for m, v in metrics["overall"].items()})
    return [Metric(metric_key(m), float(v), now, 0) for m, v in named.items()]


def _record_mlflow(settings: Settings, doc: dict[str, Any], record: str) -> None:
    """The decision as an artifact (one per evaluation, named like its gate record), a tag and
    metrics on the training run; key numbers as tags on the ranker's, the fallback's and the
    rule's versions."""
    client, _ = registry.connect(settings)
    name, version, k = doc["model"], doc["version"], settings.evaluation.ndcg_k
    run_id = client.get_model_version(name, version).run_id
    if run_id:
        client.log_dict(run_id, doc, f"gate/decision-{record}")
        client.set_tag(run_id, "gate_decision", doc["decision"])
        batch = _run_metrics(doc)
        for start in range(0, len(batch), 1000):
            client.log_batch(run_id, metrics=batch[start : start + 1000])
    report, evaluated = doc["metrics"], {"evaluated_dataset": doc["dataset_hash"]}
    gated = doc["artifacts"]["model_sha256"]
    guard = doc.get("loop_guard") if doc["champion_version"] != version else None  # not a release of itself
    registry.set_version_tags(
        settings,
        version,
        _metric_tags(report["challenger"]["overall"], k, gate_decision=doc["decision"], **evaluated)
        | {integrity.GATE_TAG: gated["model"]}
        | ({loop_guard.TAG: loop_guard.tag_value(doc["champion_version"], guard["this_release"])} if guard else {}),
    )
    fb_decision = "champion" if doc["fallback"]["champion"] else "below floor"
    registry.set_version_tags(
        settings,
        doc["fallback"]["version"],
        _metric_tags(report["fallback"]["overall"], k, gate_decision=fb_decision, **evaluated)
        | {integrity.GATE_TAG: gated["fallback"]},
        registry.fallback_model_name(settings),
    )
    registry.set_version_tags(
        settings,
        doc["rule_version"],
        _metric_tags(report["baselines"]["rule"]["overall"], k, gate_decision="baseline", **evaluated),
        registry.rule_model_name(settings),
    )


def gate_record_name(dataset_hash: str, evaluated_at: datetime, pipeline_execution_id: str = "") -> str:
    """File name of one evaluation's gate record: the holdout's dataset hash, the evaluation time
    (microseconds, UTC) and the pipeline execution (the last part of its ARN), so re-evaluating
    a version adds a record and never overwrites an earlier decision."""
    name = f"{dataset_hash[:16]}-{evaluated_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"
    execution = re.sub(r"[^A-Za-z0-9._-]", "_", pipeline_execution_id.rsplit(":", 1)[-1])[:80]
    return f"{name}-{execution}.json" if execution else f"{name}.json"


def check_trained_on(settings: Settings, versions: dict[str, str], dataset_hash: str) -> None:
    """DataError unless every ``name -> version`` was trained on the dataset this holdout comes
    from (its ``dataset_hash`` tag): a gate on another dataset's holdout compares nothing."""
    from mlflow.exceptions import MlflowException

    client, _ = registry.connect(settings)
    for name, version in versions.items():
        try:
            trained_on = client.get_model_version(name, version).tags.get("dataset_hash")
        except MlflowException as err:
            raise ModelError(f"{name} v{version} is not in the model registry: {err}") from err
        if not trained_on:
            raise DataError(f"{name} v{version} has no dataset_hash tag: cannot tell which dataset it was trained on")
        if trained_on != dataset_hash:
            raise DataError(
                f"{name} v{version} was trained on dataset {trained_on[:16]} but the holdout comes from "
                f"{dataset_hash[:16]}: evaluate it on its own dataset's holdout"
            )


def _move_aliases(
    settings: Settings, decision: gate.GateDecision, version: str, on_pass: str, fb_version: str, fb_ok: bool
) -> dict[str, dict[str, str]]:
    name, fb_name = settings.mlflow.model_name, registry.fallback_model_name(settings)
    if decision.promote and on_pass == registry.CHAMPION:
        registry.promote(settings, version)
    elif (
        decision.promote and on_pass == registry.CHALLENGER and registry.alias_version(settings, "champion") != version
    ):
        registry.set_alias(settings, registry.CHALLENGER, version)
    if fb_ok:
        registry.promote(settings, fb_version, fb_name)
    return {name: registry.aliases(settings, name), fb_name: registry.aliases(settings, fb_name)}


def run(
    settings: Settings,
    paths: ProcessingPaths,
    *,
    lake: Lake,
    on_pass: str | None = None,
    code_version: str = "unknown",
    pipeline_execution_id: str = "",
    overridden: Mapping[str, Any] | None = None,
) -> EvaluationOutcome:
    """Evaluate, gate, record and move aliases (``on_pass``: champion, challenger or '' for none;
    default ``gate.on_pass``). ``overridden`` (the run's checked overrides, deployed and run values)
    goes into the gate record so a reviewer sees what this run changed."""
    on_pass = settings.gate.on_pass if on_pass is None else on_pass
    cfg, k = settings.evaluation, settings.evaluation.ndcg_k
    name = settings.mlflow.model_name
    with tempfile.TemporaryDirectory(prefix="rankops-model-") as scratch:
        folder = model_folder(paths.input("model"), Path(scratch))
        challenger, version = _load(folder)
        fallback, fb_version = _load(folder / FALLBACK_DIR)
        gated = gated_artifacts(folder)
    frame, manifest = read_channel(paths.input("holdout"), "holdout")
    dataset_hash = str(manifest["dataset_hash"])
    check_trained_on(settings, {name: version, registry.fallback_model_name(settings): fb_version}, dataset_hash)
    holdout = Holdout(frame, read_item_clicks(paths.input("holdout")), int(manifest["catalog_size"]))

    report: dict[str, Any] = {
        "challenger": evaluate.evaluate_model(holdout, evaluate.score_booster(challenger, frame), cfg)
    }
    champion_version = registry.alias_version(settings, registry.CHAMPION)
    if champion_version is not None:
        report["champion"] = evaluate.evaluate_model(holdout, _champion_scores(settings, champion_version, frame), cfg)
    report["fallback"] = evaluate.evaluate_model(holdout, evaluate.score_booster(fallback, frame), cfg, False)
    report["baselines"] = {
        b: evaluate.evaluate_model(holdout, s, cfg, False)
        for b, s in evaluate.baseline_scores(holdout, settings.training.seed).items()
    }
    earlier = loop_guard.chain(
        champion_version, lambda v: registry.version_tags(settings, v), settings.gate.loop_guard_releases - 1
    )
    decision = gate.decide(
        report["challenger"]["overall"],
        report["champion"]["overall"] if champion_version else None,
        settings.gate,
        k,
        champion_version,
        earlier,
    )
    fb_ndcg = report["fallback"]["overall"][f"ndcg@{k}"]
    rule_ndcg = report["baselines"]["rule"]["overall"][f"ndcg@{k}"]
    fb_ok = fb_ndcg >= settings.gate.ndcg_floor
    evaluated_at = datetime.now(UTC)
    doc = {
        **decision.to_dict(),
        "model": name,
        "version": version,
        "on_pass": on_pass,
        "dataset_hash": dataset_hash,
        "evaluated_at": evaluated_at.isoformat(),
        "fallback": {
            "version": fb_version,
            "champion": fb_ok,
            "reason": f"fallback ndcg@{k} {fb_ndcg:.4f} {'meets' if fb_ok else 'is below'} the floor "
            f"{settings.gate.ndcg_floor:.4f} (rule baseline, which needs fresh aggregates: {rule_ndcg:.4f})",
        },
        "metrics": report,
        "overrides": dict(overridden or {}),
        # every file the gate judged, and the archive's tree digest (rankops.integrity)
        "artifacts": gated,
    }
    tags = {"dataset_hash": dataset_hash, "code_version": code_version, "pipeline_execution_id": pipeline_execution_id}
    doc["rule_version"] = rule_model.ensure_registered(settings, frame.head(5), tags)
    record = gate_record_name(dataset_hash, evaluated_at, pipeline_execution_id)
    gate_uri = lake.uri("artifacts", "gate", name, f"v{version}", record)
    doc["gate_uri"] = gate_uri
    lake.write_json(gate_uri, doc)  # the decision is on record before anything acts on it
    _record_mlflow(settings, doc, record)
    doc["aliases"] = _move_aliases(settings, decision, version, on_pass if decision.promote else "", fb_version, fb_ok)
    lineage_uri = _write_lineage(
        settings, lake, manifest, version, fb_version, doc, gate_uri, code_version, pipeline_execution_id
    )
    doc["lineage_uri"] = lineage_uri
    doc["archived"] = [f"{a.name}/{a.version}" for a in registry.archive_stale(settings)]
    lake.write_json(gate_uri, doc)  # complete: with the aliases it moved and what it archived
    out = paths.output(OUTPUT)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUTPUT_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
    return EvaluationOutcome(version, fb_version, decision, report, doc["aliases"], gate_uri, lineage_uri)


def _without_digest(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "digest"}


def _write_lineage(
    settings: Settings,
    lake: Lake,
    manifest: dict[str, Any],
    version: str,
    fb_version: str,
    doc: dict[str, Any],
    gate_uri: str,
    code_version: str,
    pipeline_execution_id: str,
) -> str:
    """One record per version (ranker and fallback), its URI tagged on the version."""
    client, _ = registry.connect(settings)
    root = lake.zone_uri("artifacts")
    uri = ""
    for name, ver in ((settings.mlflow.model_name, version), (registry.fallback_model_name(settings), fb_version)):
        mv = client.get_model_version(name, ver)
        tags = dict(mv.tags)
        record = lineage.LineageRecord(
            model_name=name,
            model_version=ver,
            dataset_hash=str(manifest["dataset_hash"]),
            dataset_manifest_uri=manifest_uri(lake, str(manifest["dataset_hash"])),
            feature_set_version=str(manifest.get("feature_set_version", tags.get("feature_set_version", ""))),
            run_id=mv.run_id or "",
            code_version=tags.get("code_version", code_version),
            pipeline_execution_id=tags.get("pipeline_execution_id", pipeline_execution_id),
            details={"splits": {s: _without_digest(m) for s, m in manifest["splits"].items()}},
            events=[
                {
                    "type": "registered",
                    "at": mv.creation_timestamp
                    and datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
                },
                {
                    "type": "evaluated",
                    "at": doc["evaluated_at"],
                    "decision": doc["decision"],
                    "gate": gate_uri,
                    "pipeline_execution_id": pipeline_execution_id,
                },
                {"type": "aliases", "at": doc["evaluated_at"], "aliases": doc["aliases"].get(name, {})},
            ],
        )
        written = lineage.write_record(root, record)
        registry.set_version_tags(settings, ver, {"lineage_uri": written}, name)
        uri = uri or written
    return uri
