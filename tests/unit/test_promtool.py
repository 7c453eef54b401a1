"""The alert rules checked and unit-tested by Prometheus's own promtool (Debian package
``prometheus``; ``make test`` installs it when missing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from rankops.monitoring import dashboards, metrics

RULES = Path(metrics.__file__).parent / "assets" / "prometheus-rules.yml"
CASES = sorted((Path(__file__).parent / "promtool").glob("rules_test*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed: run `make promtool` (apt-get install prometheus)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_pass_and_every_alert_fires_in_one() -> None:
    result = promtool("test", "rules", *map(str, CASES))
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    assert {a["labels"]["severity"] for a in alerts.values()} == {"P1", "P2"}
    fired = {
        case["alertname"]
        for path in CASES
        for group in yaml.safe_load(path.read_text())["tests"]
        for case in group["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert set(alerts) == fired, f"alerts without a promtool case where they fire: {set(alerts) - fired}"


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    queries = [q for specs in dashboards.DASHBOARDS.values() for spec in specs for q, _ in spec.queries]
    rules = [
        {"record": f"rankops:dashboard_{i}", "expr": q.replace("$__rate_interval", "5m")} for i, q in enumerate(queries)
    ]
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
