"""The server's start-up around the app: the multiprocess metrics directory and the container's
``serve`` entrypoint without a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankops.monitoring.metrics import INSTANCE_ENV, MULTIPROC_ENV, ServingMetrics
from rankops.serving import server
from sagemaker_jobs.serve import entry
from tests.conftest import make_settings


def test_only_prometheus_files_are_cleared_from_the_multiprocess_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "shared"
    (folder / "nested").mkdir(parents=True)
    keep = [folder / "notes.txt", folder / "state.db", folder / "nested" / "counter_1.db"]
    for path in keep:
        path.write_text("not prometheus-client's")
    stale = [folder / "counter_123.db", folder / "histogram_123.db", folder / "gauge_livemostrecent_9.db"]
    for path in stale:
        path.write_bytes(b"\0" * 8)
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    monkeypatch.setenv(INSTANCE_ENV, "")  # restored (unset) after the test, whatever the code sets

    server._prepare_multiprocess(make_settings(tmp_path / "home"), 8080)
    assert all(p.exists() for p in keep), "a directory rankops did not create keeps everything else"
    assert not any(p.exists() for p in stale)
    instance = ServingMetrics().instance
    assert instance["id"] == server.os.environ[INSTANCE_ENV], "every worker reports one counters instance"
    assert ServingMetrics().instance == instance


def test_the_default_directory_is_created_under_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (MULTIPROC_ENV, INSTANCE_ENV):
        monkeypatch.setenv(name, "")  # restored after the test, whatever the code sets
        monkeypatch.delenv(name)
    settings = make_settings(tmp_path / "home")
    server._prepare_multiprocess(settings, 9000)
    assert Path(server.os.environ[MULTIPROC_ENV]) == settings.home / "run" / "prometheus-9000"
    assert (settings.home / "run" / "prometheus-9000").is_dir()


def test_the_container_refuses_to_start_without_its_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_MODEL_DIR", "")  # restored after the test, whatever the code sets
    monkeypatch.delenv("SM_MODEL_DIR")
    monkeypatch.setattr(server, "SAGEMAKER_MODEL_DIR", tmp_path / "opt-ml-model")
    started: list[object] = []
    monkeypatch.setattr(entry, "run", lambda *a, **k: started.append(a))
    with pytest.raises(SystemExit, match=r"no model to serve: .*opt-ml-model/MLmodel does not exist"):
        entry.main(["serve"])
    assert not started, "no registry fallback under the container entrypoint"

    (tmp_path / "opt-ml-model").mkdir()
    (tmp_path / "opt-ml-model" / "MLmodel").write_text("flavors: {}\n")
    monkeypatch.setenv("RANKOPS_HOME", str(tmp_path / "home"))
    entry.main(["serve"])
    assert started and started[0][3] == tmp_path / "opt-ml-model"  # type: ignore[index]
