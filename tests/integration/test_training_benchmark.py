"""The training benchmark runs at a tiny size and reports what the README quotes."""

import json

import pytest

from benchmarks import training_overhead


def test_training_overhead_benchmark_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert training_overhead.main(["--rows", "3000", "--rounds", "5", "--repeat", "1"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["benchmark"] == "training_overhead" and report["rows"] == 3000
    assert report["same_model"] is True, "same rows and parameters must give the same model"
    assert report["best_iteration"]["plain"] == report["best_iteration"]["ours"]
    seconds = report["seconds"]
    assert seconds["plain_lightgbm"] > 0 and seconds["training_job"] > 0
    assert report["ratio"] == pytest.approx(seconds["training_job"] / seconds["plain_lightgbm"], rel=1e-2)
    assert {"read", "train", "train_fallback", "mlflow", "save"} <= set(seconds["job_phases_last"])
