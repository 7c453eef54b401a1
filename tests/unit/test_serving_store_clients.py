"""The serving path's store clients: one attempt per call, timeouts within the latency budget;
materialization keeps its own, retrying clients."""

from __future__ import annotations

from pathlib import Path

from rankops.features.online.factory import open_kind
from rankops.serving.server import store_timeout_cap_s
from tests.conftest import make_settings


def test_serving_clients_make_one_attempt_within_the_budget(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, online_store={"dynamodb__region": "eu-west-1"})
    cap = store_timeout_cap_s(settings)
    assert cap == settings.serving.latency_budget_ms / 4000

    dynamo = open_kind(settings, "dynamodb", serving_timeout_s=cap)
    config = dynamo.client.meta.config  # type: ignore[attr-defined]
    assert config.retries["total_max_attempts"] == 1, "a retried read cannot fit the budget"
    assert config.connect_timeout <= cap and config.read_timeout <= cap
    assert dynamo.read_rounds == 1  # type: ignore[attr-defined]
    assert dynamo.worst_call_s == 2 * cap <= settings.serving.latency_budget_ms / 2000  # type: ignore[attr-defined]

    redis = open_kind(settings, "redis", serving_timeout_s=cap)
    kwargs = redis.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert kwargs["socket_connect_timeout"] <= cap and kwargs["socket_timeout"] <= cap
    assert redis.worst_call_s <= 2 * cap  # type: ignore[attr-defined]
    redis.close()
    dynamo.close()


def test_materialization_clients_keep_their_retries_and_timeouts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, online_store={"dynamodb__region": "eu-west-1"})
    cfg = settings.online_store
    dynamo = open_kind(settings, "dynamodb", for_writes=True)
    config = dynamo.client.meta.config  # type: ignore[attr-defined]
    assert config.retries["total_max_attempts"] == cfg.dynamodb.max_attempts + 1  # botocore: retries + 1
    assert config.read_timeout == cfg.dynamodb.read_timeout_ms / 1000
    assert dynamo.read_rounds == cfg.dynamodb.max_attempts + 1  # type: ignore[attr-defined]
    redis = open_kind(settings, "redis", for_writes=True)
    kwargs = redis.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert kwargs["socket_timeout"] == cfg.redis.write_timeout_ms / 1000
    assert kwargs["socket_connect_timeout"] == cfg.redis.connect_timeout_ms / 1000
    redis.close()
    dynamo.close()
