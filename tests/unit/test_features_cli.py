"""``rankops features get|materialize``: valid JSON out, one-line errors for a bad store URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankops.cli import main
from rankops.features.online.redis import redacted
from tests import serving_helpers as h
from tests.conftest import make_settings


def strict_json(line: str) -> dict:  # type: ignore[type-arg]
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    doc: dict = json.loads(line, parse_constant=refuse)  # type: ignore[type-arg]
    return doc


def test_get_prints_missing_values_as_null(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    h.seed_store(make_settings(home), count=5)
    assert main(["--home", str(home), "features", "get", "item", "i-1", "i-nope"]) == 0
    found, missing = [strict_json(line) for line in capsys.readouterr().out.splitlines()]
    assert found["found"] is True and isinstance(found["features"]["created_at_s"], float)
    assert missing["found"] is False
    assert missing["features"]["created_at_s"] is None, "the NaN default prints as null"
    assert missing["features"]["ctr_7d"] == 0.1


@pytest.mark.parametrize("action", [["get", "item", "i-1"], ["materialize"]])
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://:s3cret@cache:6379/0", "must specify one of the following schemes"),
        ("redis://cache:port/0", "Port could not be cast to integer"),
    ],
)
def test_a_bad_redis_url_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action, url, problem
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RANKOPS_ONLINE_STORE__ROUTING", '{"item": "redis", "seller": "redis", "category": "redis"}')
    monkeypatch.setenv("RANKOPS_ONLINE_STORE__REDIS__URL", url)
    assert main(["--home", str(tmp_path), "features", *action]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("rankops: error: online_store.redis.url ")
    assert problem in err and "s3cret" not in err


def test_passwords_are_redacted_from_urls() -> None:
    assert redacted("rediss://user:pw@host:6379/0") == "rediss://user:***@host:6379/0"
    assert redacted("redis://host:6379/0") == "redis://host:6379/0"
