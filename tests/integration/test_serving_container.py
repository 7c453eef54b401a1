"""The SageMaker container contract: the ``serve`` entrypoint with SM_MODEL_DIR (a model
archive carrying its fallback model), SAGEMAKER_BIND_TO_PORT and two workers whose
metrics are aggregated at /metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from rankops import background, registry
from rankops.serving.server import build_server
from tests import serving_helpers as h


def model_archive(settings, target: Path) -> Path:  # type: ignore[no-untyped-def]
    """An extracted model.tar.gz as SageMaker lays it out: the champion, fallback/ inside."""
    import mlflow

    registry.connect(settings)
    name = settings.mlflow.model_name
    mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(target))
    (target / "VERSION").write_text(registry.alias_version(settings, "champion") + "\n")
    fallback = registry.fallback_model_name(settings)
    mlflow.artifacts.download_artifacts(f"models:/{fallback}@champion", dst_path=str(target / "fallback"))
    return target


def test_model_directory_serves_champion_and_fallback(serving_home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = model_archive(serving_home.settings, tmp_path / "model")
    server = build_server(serving_home.settings, model_dir=archive)
    assert server.watcher is None, "in SageMaker the endpoint, not a state file, routes variants"
    assert server.ranker.fallback is not None and server.ranker.fallback.variant == "fallback"
    from rankops.serving.schema import RankRequest

    answer = server.ranker.rank(RankRequest("u-1", h.item_ids(5), {"category": "toys"}))
    assert (answer["variant"], answer["model_version"]) == ("champion", serving_home.versions["good"])
    server.ranker.lookup.close()


def test_serve_entrypoint_with_two_workers(serving_home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = model_archive(serving_home.settings, tmp_path / "model")
    home = tmp_path / "home"
    shutil.copytree(serving_home.settings.home / "online", home / "online")
    port = background.free_port(0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANKOPS_", "PROMETHEUS_"))}
    env.update(
        RANKOPS_HOME=str(home),
        SM_MODEL_DIR=str(archive),
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_MODEL_SERVER_WORKERS="2",
    )
    serve = Path(sys.executable).parent / "serve"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(serve), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        background.wait_until_ready(url, 90, proc)
        answers = [background.post_json(url, h.request(10, user=f"u-{k}")) for k in range(40)]
        assert {a["model_version"] for a in answers} == {serving_home.versions["good"]}
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            exposition = response.read().decode()
        counts = [
            s.value
            for family in text_string_to_metric_families(exposition)
            if family.name == "rankops_request_seconds"
            for s in family.samples
            if s.name.endswith("_count") and s.labels.get("variant") == "champion"
        ]
        assert sum(counts) == 40, "both workers' requests are counted"
        pids = {p.stem.rsplit("_", 1)[-1] for p in (home / "run").glob("prometheus-*/*.db")}
        assert len(pids) == 2, f"one set of metric files per worker process: {pids}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
        log.close()
