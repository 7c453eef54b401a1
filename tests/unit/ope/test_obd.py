"""External logs in the Open Bandit Dataset CSV layout, through `rankops ope --log`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rankops.cli import main
from rankops.errors import DataError
from rankops.ope.obd import evaluate_uniform, read_obd_csv

HEADER = ",timestamp,item_id,position,click,propensity_score,user_feature_0,user-item_affinity_0"


def write_log(path: Path, rows: list[tuple[int, int, int, float]]) -> Path:
    """OBD layout: unnamed index, timestamp, item_id, position (1-based), click, propensity, features."""
    lines = [HEADER]
    for n, (item, pos, click, prop) in enumerate(rows):
        lines.append(f"{n},2019-11-24 00:00:{n % 60:02d}.000000+00:00,{item},{pos},{click},{prop},81ce12,0.0")
    path.write_text("\n".join(lines) + "\n")
    return path


def random_log(path: Path, n: int = 3_000, n_items: int = 10, seed: int = 0) -> Path:
    """A uniformly random logging policy: every item with probability 1/n_items at each position."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, n_items, n)
    clicks = (rng.random(n) < 0.02 + 0.01 * (items % 3)).astype(int)
    rows = [
        (int(i), int(p), int(c), 1.0 / n_items) for i, p, c in zip(items, rng.integers(1, 4, n), clicks, strict=True)
    ]
    return write_log(path, rows)


def test_uniform_policy_on_uniform_logs_is_the_logged_click_rate(tmp_path: Path) -> None:
    data = read_obd_csv(random_log(tmp_path / "all.csv"))
    report = evaluate_uniform(data, n_boot=100)
    ctr = report["logged_ctr"]
    by_name = {e["estimator"]: e for e in report["estimates"]}  # type: ignore[attr-defined]
    assert by_name["ips"]["value"] == pytest.approx(ctr)
    assert by_name["snips"]["value"] == pytest.approx(ctr)
    assert by_name["dr"]["ci95"][0] < ctr < by_name["dr"]["ci95"][1]
    assert by_name["ips"]["ess"] == pytest.approx(3_000)


def test_uniform_policy_reweights_a_skewed_log(tmp_path: Path) -> None:
    # item 0 is logged with probability 0.5 and clicked; items 1-3 are logged with p 1/6 and never
    # clicked. Uniform over 4 items shows item 0 with probability 1/4: weight 0.5 on its rows.
    rows = [(0, 1, 1, 0.5), (1, 1, 0, 1 / 6), (0, 1, 1, 0.5), (2, 1, 0, 1 / 6), (3, 1, 0, 1 / 6), (0, 1, 0, 0.5)]
    report = evaluate_uniform(read_obd_csv(write_log(tmp_path / "skewed.csv", rows)), n_boot=50)
    ips = next(e for e in report["estimates"] if e["estimator"] == "ips")  # type: ignore[attr-defined]
    assert ips["value"] == pytest.approx((0.5 + 0.5) / 6, abs=1e-6)  # two clicks weighted 0.5, six rows


def test_zero_propensity_rows_are_quarantined_not_divided_by(tmp_path: Path) -> None:
    rows = [(0, 1, 1, 0.5), (1, 1, 1, 0.0), (1, 2, 0, 0.5), (0, 2, 0, 0.0)]
    data = read_obd_csv(write_log(tmp_path / "zero.csv", rows))
    assert (data.rows_read, data.quarantined, len(data.log.click)) == (4, 2, 2)
    report = evaluate_uniform(data, n_boot=20)
    assert report["quarantined_zero_propensity"] == 2
    assert all(np.isfinite(e["value"]) for e in report["estimates"])  # type: ignore[attr-defined]


def test_propensity_above_one_names_the_line(tmp_path: Path) -> None:
    path = write_log(tmp_path / "bad.csv", [(0, 1, 0, 0.5), (1, 1, 0, 0.5), (2, 1, 1, 1.5)])
    with pytest.raises(DataError, match=r"bad.csv line 4: propensity_score 1.5 is outside \(0, 1\]"):
        read_obd_csv(path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nocol.csv"
    path.write_text("timestamp,item_id,position,click\n2019-11-24,1,1,0\n")
    with pytest.raises(DataError, match="missing column 'propensity_score'"):
        read_obd_csv(path)


def test_cli_prints_estimates_and_exits_2_on_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = random_log(tmp_path / "all.csv", n=600)
    assert main(["ope", "--log", str(log), "--policy", "uniform", "--bootstrap", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [e["estimator"] for e in report["estimates"]] == ["ips", "snips", "dr"]
    assert report["rows"] == 600 and report["n_items"] == 10

    bad = write_log(tmp_path / "bad.csv", [(0, 1, 0, -0.1)])
    assert main(["ope", "--log", str(bad), "--policy", "uniform"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv line 2: propensity_score -0.1 is outside (0, 1]" in err
    assert main(["ope", "--log", str(log), "--policy", "champion"]) == 2
    assert "--policy uniform only" in capsys.readouterr().err
