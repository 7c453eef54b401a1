"""The EMR entrypoint is the same file locally: arguments in, JSON out, exit 2 with one
line when the job cannot run or validation rejects it."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

from emr_jobs import build_features
from rankops.features import offline


def test_an_hourly_run_of_the_emr_job(spark, market, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "lake"
    shutil.copytree(market.lake.zone_uri("raw"), root / "raw")
    end = datetime.fromisoformat(offline.read_manifest(market.lake, market.settings)["published_through"])
    args = ["--home", str(tmp_path / "home"), "--lake-root", str(root), "--end", end.isoformat(), "--hours-back", "2"]
    assert build_features.main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["window"] == {"start": (end - timedelta(hours=2)).isoformat(), "end": end.isoformat(), "backfill": False}
    assert out["rows"]["item"] > 0 and out["report"].startswith(str(root / "features"))


def test_the_emr_job_fails_in_one_line_without_events(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert build_features.main(["--home", str(tmp_path), "--raw", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("build_features: error:") and "no committed events" in err and "\n" not in err
