"""The shipped alert rules evaluated by a real Prometheus server scraping a real inference server
process: with its private redis-server stopped, ``RankopsDegradedAnswers`` goes from inactive to
pending to firing (and ``RankopsStoreFailing`` fires with it).

Only the waiting is shortened, in a test-only rendering of the rules: every ``for:`` becomes a
couple of seconds and Prometheus scrapes and evaluates every second. The expressions, labels and
thresholds are the shipped ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.serving_setup import free_port, start, stop
from benchmarks.serving_store import PrivateRedis, redis_store, seed_items
from rankops.monitoring import metrics
from tests import serving_helpers as h

RULES = Path(metrics.__file__).parent / "assets" / "prometheus-rules.yml"
PREFIX = "rankops-prom-test"
FOR = "2s"
# The inference server process: item features from the private Redis, read with a 1 s timeout (not
# the production 50 ms) so that a loaded test machine does not degrade answers before the outage.
SERVE = f"""
import sys
from pathlib import Path
from benchmarks.serving_store import redis_store
from rankops.serving.server import run
from tests.conftest import make_settings

home, url, port = sys.argv[1:]
run(make_settings(Path(home)), "127.0.0.1", int(port), workers=1, stores={{"item": redis_store(url, "{PREFIX}", 1000)}})
"""


def render_rules(target: Path) -> list[str]:
    """The shipped rules with every ``for:`` shortened to :data:`FOR`; returns the alert names."""
    doc = yaml.safe_load(RULES.read_text())
    alerts = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.append(rule["alert"])
                if "for" in rule:
                    rule["for"] = FOR
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return alerts


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def alert_states(prom: str) -> dict[str, str]:
    """Alert name -> its most advanced state (``firing`` > ``pending``); absent means inactive."""
    states: dict[str, str] = {}
    for alert in get(f"{prom}/api/v1/alerts")["data"]["alerts"]:
        name = alert["labels"]["alertname"]
        if states.get(name) != "firing":
            states[name] = alert["state"]
    return states


def wait_for(what: str, condition, deadline_s: float = 180.0, proc=None) -> Any:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns a truthy value (an event, not a duration: the deadline is generous)."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        assert proc is None or proc.poll() is None, f"prometheus exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


class Traffic(threading.Thread):
    """Requests to the server, one after another, until stopped (the rules are rates of answers)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/invocations"
        self.stopping = threading.Event()
        self.answers: list[str] = []

    def run(self) -> None:
        k = 0
        while not self.stopping.is_set():
            body = json.dumps(h.request(12, user=f"u-{k % 50}")).encode()
            request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                self.answers.append(json.loads(response.read())["variant"])
            k += 1
            self.stopping.wait(0.05)


def start_prometheus(folder: Path, target_port: int) -> tuple[subprocess.Popen[bytes], str]:
    """``prometheus`` scraping ``127.0.0.1:target_port`` every second with the rendered rules."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(folder / "rules.yml")],
        "scrape_configs": [{"job_name": "rankops", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        "prometheus",
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (folder / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def test_a_store_outage_fires_the_degraded_answers_alert(serving_copy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("prometheus") is None:
        pytest.fail("no prometheus binary: `make promtool` installs Debian's prometheus package")
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    traffic: Traffic | None = None
    try:
        store = redis_store(redis.url, PREFIX, 1000)
        seed_items(store, h.item_ids(300), h.item_features(300), "v1")
        store.close()
        port = free_port()
        command = [sys.executable, "-c", SERVE, str(serving_copy.settings.home), redis.url, str(port)]
        server = start(command, port, tmp_path / "server.log")
        procs.append(server)

        alerts = render_rules(tmp_path / "rules.yml")
        assert {"RankopsDegradedAnswers", "RankopsStoreFailing"} <= set(alerts)
        prometheus, prom = start_prometheus(tmp_path, port)
        procs.append(prometheus)

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{prom}/-/ready", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for("prometheus to be ready", ready, proc=prometheus)
        traffic = Traffic(port)
        traffic.start()

        def scraped_healthy_traffic() -> bool:
            query = 'sum(rate(rankops_request_seconds_count{outcome="ok"}[5m])) > 0'
            result = get(f"{prom}/api/v1/query?query={urllib.parse.quote(query)}")["data"]["result"]
            return bool(result)

        wait_for("the server's answers in Prometheus", scraped_healthy_traffic, proc=prometheus)
        rules = get(f"{prom}/api/v1/rules?type=alert")["data"]["groups"]
        loaded = {r["name"]: r for g in rules for r in g["rules"]}
        assert loaded["RankopsDegradedAnswers"]["state"] == "inactive", "healthy serving raises no alert"
        assert "RankopsDegradedAnswers" not in alert_states(prom)
        assert set(traffic.answers) == {"champion"}

        redis.stop()  # the store outage: the server keeps answering from the fallback chain
        firing_now = lambda: alert_states(prom).get("RankopsDegradedAnswers") == "firing"  # noqa: E731
        wait_for("RankopsDegradedAnswers to fire", firing_now, proc=prometheus)
        # it was pending first (Prometheus keeps the ALERTS series of every state it evaluated)
        pending = 'count_over_time(ALERTS{alertname="RankopsDegradedAnswers",alertstate="pending"}[10m])'
        assert get(f"{prom}/api/v1/query?query={urllib.parse.quote(pending)}")["data"]["result"], "never pending"
        firing = [a for a in get(f"{prom}/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
        degraded = next(a for a in firing if a["labels"]["alertname"] == "RankopsDegradedAnswers")
        assert degraded["labels"]["severity"] == "P1"
        wait_for("RankopsStoreFailing to fire", lambda: alert_states(prom).get("RankopsStoreFailing") == "firing")
        assert traffic.answers[-1] != "champion", "answers during the outage come from the fallback chain"
    finally:
        if traffic is not None:
            traffic.stopping.set()
            traffic.join(timeout=30)
        for proc in reversed(procs):
            stop(proc)
        redis.stop()
