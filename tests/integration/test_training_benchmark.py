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
    # the ratio is of the unrounded times; the reported seconds are rounded to milliseconds
    half_ms = 5e-4
    low = (seconds["training_job"] - half_ms) / (seconds["plain_lightgbm"] + half_ms)
    high = (seconds["training_job"] + half_ms) / (seconds["plain_lightgbm"] - half_ms)
    assert low - 1e-3 <= report["ratio"] <= high + 1e-3
    assert {"read", "train", "train_fallback", "compile", "mlflow", "save"} <= set(seconds["job_phases_last"])
    compiled = report["compile"]  # the training line of the compile step: both models, their cost
    assert compiled["seconds"] == seconds["job_phases_last"]["compile"] and len(compiled["models"]) == 2
    assert all(m["compiler"] == "lleaves" and m["object_bytes"] > 0 for m in compiled["models"])
