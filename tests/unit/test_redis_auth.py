"""ElastiCache AUTH: the Redis store reads its token from Secrets Manager when it connects."""

import json

import boto3
import pytest
from moto import mock_aws

from rankops.errors import StoreError
from rankops.features.online.redis import RedisConfig, make_redis
from rankops.features.online.redis_auth import auth_token


@mock_aws
def test_the_token_comes_from_the_secret_and_reaches_the_client() -> None:
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    plain = secrets.create_secret(Name="plain", SecretString="s3cr3t-token")["ARN"]
    as_json = secrets.create_secret(Name="json", SecretString=json.dumps({"password": "from-json"}))["ARN"]
    assert auth_token(plain, secrets) == "s3cr3t-token"
    assert auth_token(as_json, secrets) == "from-json"
    client = make_redis(RedisConfig(url="rediss://cache.example:6380/0", auth_secret_arn=plain))
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["password"] == "s3cr3t-token" and kwargs["host"] == "cache.example"
    with pytest.raises(StoreError, match="cannot read the Redis AUTH token from arn:aws:secretsmanager"):
        auth_token(plain.replace("plain", "missing"), secrets)


def test_no_secret_means_no_password() -> None:
    assert "password" not in make_redis(RedisConfig()).connection_pool.connection_kwargs or (
        make_redis(RedisConfig()).connection_pool.connection_kwargs["password"] is None
    )
