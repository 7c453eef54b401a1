"""Load only what was gated: a model artifact changed after the gate recorded its SHA-256 is
refused by the local release, by the server's hot reload (the current model keeps serving), at
the server's start from the registry, and by the container's start from a model folder."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from rankops import integrity, ranker_model, registry
from rankops.errors import ReleaseError
from rankops.release import local
from rankops.release.state import read_state, state_path
from rankops.serving import server
from rankops.serving.model import load_version
from rankops.serving.schema import RankRequest
from rankops.serving.server import build_server
from sagemaker_jobs.serve import entry
from tests import serving_helpers as h
from tests.conftest import make_settings


def stored_model_file(settings, version: str, name: str | None = None) -> Path:  # type: ignore[no-untyped-def]
    """The model file of a version where the registry's artifact store keeps it (what an attacker
    with bucket access would change)."""
    client, _ = registry.connect(settings)
    uri = client.get_model_version_download_uri(name or settings.mlflow.model_name, version)
    return Path(unquote(urlparse(uri).path)) / "model.lgb"


def gate(settings, version: str, name: str | None = None) -> Path:  # type: ignore[no-untyped-def]
    """Record the version's model file digest as the gate does, and return the stored file."""
    path = stored_model_file(settings, version, name)
    registry.set_version_tags(settings, version, {integrity.GATE_TAG: integrity.sha256_file(path)}, name)
    return path


def tamper(path: Path) -> None:
    """One digit of a leaf value changed, the length kept (LightGBM's ``tree_sizes`` still hold): a
    valid model, not the one the gate judged."""
    text = path.read_text()
    at = text.index("leaf_value=") + len("leaf_value=")
    while not text[at].isdigit():
        at += 1
    path.write_text(text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :])


def fresh(settings, alias: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """A new version of its own (the copied homes share the session's artifact store: tamper only
    what this test registered)."""
    return h.register(settings, h.tiny_booster(2), alias=alias)


def test_a_gated_version_loads_and_releases(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings = serving_copy.settings
    version = fresh(settings)
    gate(settings, version)
    assert load_version(settings, version, "challenger").version == version
    local.shadow(settings, version)
    assert read_state(state_path(settings.home)).challenger == version


def test_a_tampered_version_is_refused_at_release(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings, v = serving_copy.settings, serving_copy.versions
    version = fresh(settings)
    tamper(gate(settings, version))
    with pytest.raises(ReleaseError, match=rf"version {version} not released: .*the gate recorded"):
        local.shadow(settings, version)
    assert read_state(state_path(settings.home)) is None, "nothing moved"
    assert registry.aliases(settings) == {"champion": v["good"]}


def test_a_tampered_release_is_refused_by_the_running_server_which_keeps_serving(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings, v = serving_copy.settings, serving_copy.versions
    version = fresh(settings)
    stored = gate(settings, version)
    served = build_server(settings)
    local.shadow(settings, version)  # released while intact ...
    local.promote(settings, force=True)
    tamper(stored)  # ... changed before this server loaded it
    assert not served.watcher.check_now()
    assert "the gate recorded" in (served.watcher.last_error or "")
    doc = h.request(8)
    answer = served.ranker.rank(RankRequest(doc["user_id"], doc["candidates"], doc["context"], h.NOW))
    assert answer["model_version"] == v["good"] and answer["variant"] == "champion"
    served.ranker.lookup.close()


def test_a_tampered_champion_is_refused_at_server_start(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings = serving_copy.settings
    tamper(gate(settings, fresh(settings, alias=registry.CHAMPION)))
    served = build_server(settings)
    assert served.ranker.routing.champion is None, "refused, not loaded"
    answer = served.ranker.rank(RankRequest("u", ["i-1", "i-2"], {}, h.NOW))
    assert answer["variant"] == "fallback"
    served.ranker.lookup.close()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A container's model folder (champion and fallback), as the training job writes it."""
    folder = tmp_path / "model"
    frame, _, _ = h.model_frame(40, 1)
    ranker_model.save_model(h.tiny_booster(0), folder, frame.head(3))
    names = ["ctr_7d", "category_match"]
    ranker_model.save_model(h.tiny_booster(3, names=names), folder / "fallback", frame[names].head(3))
    (folder / "VERSION").write_text("4\n")
    return folder


def test_the_container_starts_only_on_the_gated_folder(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(integrity.MODEL_DIGEST_ENV, integrity.tree_digest(integrity.folder_digests(model_dir)))
    monkeypatch.setenv("SM_MODEL_DIR", str(model_dir))
    server.check_gated(model_dir)  # the gated folder passes
    tamper(model_dir / "fallback" / "model.lgb")
    with pytest.raises(SystemExit) as refused:
        entry.main(["serve"], dict(os.environ))
    message = str(refused.value)
    assert message.startswith("serve: model folder") and "is not the gated" in message
    assert "\n" not in message


def test_the_container_refuses_an_added_file(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(integrity.MODEL_DIGEST_ENV, integrity.tree_digest(integrity.folder_digests(model_dir)))
    (model_dir / "extra.py").write_text("print('hello')\n")
    with pytest.raises(integrity.IntegrityError, match="refusing to serve"):
        build_server(make_settings(model_dir.parent / "home"), model_dir)
