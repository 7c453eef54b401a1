"""No secret in what rankops prints: ``rankops config``, one-line CLI errors, store errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from rankops.cli import error, main
from rankops.config_sections import RedisConfig
from rankops.errors import StoreError
from rankops.features.online.redis import RedisStore, make_redis
from rankops.redaction import redact_settings, redact_text

PASSWORD = "hunter2-Secret"


def test_urls_lose_their_password_and_nothing_else() -> None:
    assert redact_text(f"redis://:{PASSWORD}@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_text(f"see postgresql://app:{PASSWORD}@db/mlflow.") == "see postgresql://app:***@db/mlflow."
    assert redact_text("redis://cache:6379/0 and s3://bucket/key") == "redis://cache:6379/0 and s3://bucket/key"
    dump = {"redis": {"url": f"rediss://u:{PASSWORD}@h:1", "auth_secret_arn": "arn:aws:x", "password": PASSWORD}}
    assert redact_settings(dump) == {
        "redis": {"url": "rediss://u:***@h:1", "auth_secret_arn": "arn:aws:x", "password": "***"}
    }


def test_rankops_config_never_prints_the_redis_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RANKOPS_ONLINE_STORE__REDIS__URL", f"redis://:{PASSWORD}@cache.internal:6379/0")
    monkeypatch.setenv("RANKOPS_MLFLOW__TRACKING_URI", f"postgresql://mlflow:{PASSWORD}@db.internal/mlflow")
    assert main(["--home", str(tmp_path), "config"]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out
    shown = json.loads(out)
    assert shown["online_store"]["redis"]["url"] == "redis://:***@cache.internal:6379/0"
    assert shown["mlflow"]["tracking_uri"] == "postgresql://mlflow:***@db.internal/mlflow"


def test_errors_never_print_the_redis_password(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:  # a port nothing listens on: the read fails at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    cfg = RedisConfig(url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    with pytest.raises(StoreError) as failed:
        RedisStore(make_redis(cfg), cfg).read_many({"item": ["a"]})
    assert PASSWORD not in str(failed.value) and f"127.0.0.1:{port}" in str(failed.value)
    assert error(f"cannot reach redis://:{PASSWORD}@cache:6379/0") == 2
    err = capsys.readouterr().err
    assert PASSWORD not in err and "redis://:***@cache:6379/0" in err
