"""The whole local loop, as `make demo` runs it, on a small marketplace."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from rankops import background, registry
from rankops.cli.common import Progress
from rankops.demo import run_demo, summary_text
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory, spark):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("demo-home"))
    result = run_demo(settings, events=120_000, days=4, seed=5, progress=Progress(total=4))
    yield settings, result
    background.stop(settings.home)


def test_model_clearly_beats_random_and_popularity(demo) -> None:  # type: ignore[no-untyped-def]
    _, result = demo
    metrics = result.gate["metrics"]
    model = metrics["challenger"]["ndcg@10"]
    assert model > metrics["baseline_random"]["ndcg@10"] + 0.10
    assert model > metrics["baseline_popularity"]["ndcg@10"] + 0.02
    assert model > metrics["baseline_rule"]["ndcg@10"]
    assert result.best_iteration > 1, "the booster learned more than one tree"


def test_server_ranks_a_real_request(demo) -> None:  # type: ignore[no-untyped-def]
    settings, result = demo
    response = result.response
    assert {r["item_id"] for r in response["ranking"]} == set(result.request["candidates"])
    scores = [r["score"] for r in response["ranking"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    assert (response["model_version"], response["variant"], response["fallback"]) == ("1", "champion", None)
    with urllib.request.urlopen(f"{result.server['url']}/ping", timeout=5) as ping:
        assert ping.status == 200
    assert background.status(settings.home)["pid"] == result.server["pid"]


def test_the_demo_ran_the_pipeline(demo) -> None:  # type: ignore[no-untyped-def]
    settings, result = demo
    assert registry.alias_version(settings, registry.CHAMPION) == "1"
    assert result.execution.status == "SUCCEEDED"
    names = [s.name for s in result.execution.states]
    assert names.index("Processing") < names.index("Training") < names.index("Evaluation") < names.index("Deploy")


def test_summary_says_where_to_look(demo) -> None:  # type: ignore[no-untyped-def]
    settings, result = demo
    text = summary_text(settings, result, 12.0)
    for expected in (
        "NDCG@10",
        "random baseline",
        "popularity baseline",
        "mlflow ui --backend-store-uri",
        "serve --stop",
        "pipeline history --show " + result.execution.name,
        result.server["url"],
        json.dumps(result.request),
        "grafana-business.json",
        "drift.json",
        str(settings.home / "lake" / "raw" / "datacapture" / "local"),
        str(settings.home / "run" / "demo.log"),
    ):
        assert expected in text


def test_stopping_the_server(demo) -> None:  # type: ignore[no-untyped-def]
    settings, result = demo
    assert background.stop(settings.home)
    assert background.status(settings.home) is None
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(f"{result.server['url']}/ping", timeout=2)
