"""The Redis fixture itself: a real server, isolated by key prefix, never flushed."""

import redis


def test_redis_fixture_gives_a_real_isolated_server(redis_target) -> None:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_target.url)
    key = f"{redis_target.prefix}:probe"
    client.set(key, b"1", ex=60)
    assert client.get(key) == b"1"
    assert redis_target.prefix.startswith("rankops-test-")
    client.delete(key)
