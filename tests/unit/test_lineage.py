"""Lineage records: create, merge on re-run, append release events; local and S3; Lambda-safe imports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rankops import lineage
from rankops.errors import DataError, LakeError


def record(**changes: object) -> lineage.LineageRecord:
    fields: dict = {
        "model_name": "rankops-ranker",
        "model_version": "3",
        "dataset_hash": "d" * 64,
        "dataset_manifest_uri": "lake/artifacts/datasets/ddd/manifest.json",
        "feature_set_version": "v123",
        "run_id": "run-1",
        "code_version": "abc1234",
        "pipeline_execution_id": "exec-1",
        "events": [{"type": "evaluated", "at": "2026-11-24T10:00:00+00:00", "decision": "promote"}],
    }
    fields.update(changes)
    return lineage.LineageRecord(**fields)


def test_a_record_ties_data_features_run_and_version(tmp_path: Path) -> None:
    root = str(tmp_path / "artifacts")
    uri = lineage.write_record(root, record())
    assert uri == f"{root}/lineage/rankops-ranker/v3.json"
    back = lineage.read_record(root, "rankops-ranker", "3")
    assert back == record(created_at=back.created_at)
    assert json.loads(Path(uri).read_text())["dataset_hash"] == "d" * 64


def test_rewriting_keeps_history_and_appends_new_events(tmp_path: Path) -> None:
    root = str(tmp_path)
    lineage.write_record(root, record(created_at="2026-11-24T09:00:00+00:00"))
    rerun = {"type": "evaluated", "at": "2026-11-25T10:00:00+00:00", "decision": "promote"}
    lineage.write_record(root, record(events=[*record().events, rerun], created_at="later"))
    back = lineage.read_record(root, "rankops-ranker", "3")
    assert [e["at"] for e in back.events] == ["2026-11-24T10:00:00+00:00", "2026-11-25T10:00:00+00:00"]
    assert back.created_at == "2026-11-24T09:00:00+00:00"


def test_release_events_are_appended(tmp_path: Path) -> None:
    root = str(tmp_path)
    lineage.write_record(root, record())
    lineage.append_event(root, "rankops-ranker", "3", "release", {"stage": "canary", "traffic": 0.1})
    after = lineage.append_event(root, "rankops-ranker", "3", "release", {"stage": "promoted", "traffic": 1.0})
    assert [e.get("stage") for e in after.events] == [None, "canary", "promoted"]
    assert lineage.read_record(root, "rankops-ranker", "3").events == after.events
    with pytest.raises(LakeError, match="no lineage record for rankops-ranker version 9"):
        lineage.append_event(root, "rankops-ranker", "9", "release")
    with pytest.raises(DataError, match="needs a type"):
        lineage.append_event(root, "rankops-ranker", "3", "")


def test_lineage_imports_only_what_a_lambda_has() -> None:
    code = (
        "import sys, rankops.lineage; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pyarrow', 'pydantic', 'pandas', 'mlflow', 'lightgbm', 'pyspark', 'yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
