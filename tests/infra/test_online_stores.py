"""Redis (TLS, AUTH, KMS, multi-AZ failover in prod) and DynamoDB (on demand, PITR, KMS)."""

from __future__ import annotations

import pytest

from rankops.features.online.redis import SERVER_PARAMETERS
from tests.infra.conftest import ENVS


@pytest.mark.parametrize("env", ENVS)
def test_redis_is_encrypted_authenticated_and_private(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    (redis,) = synth.resources("online-stores", "AWS::ElastiCache::ReplicationGroup").values()
    props = redis["Properties"]
    assert props["TransitEncryptionEnabled"] is True and props["AtRestEncryptionEnabled"] is True
    assert "Fn::GetAtt" in props["KmsKeyId"]  # the stores' customer-managed key
    assert "{{resolve:secretsmanager:" in str(props["AuthToken"])  # a dynamic reference, never the token
    assert props["Port"] == synth.config.aws.redis.port != 6379
    assert props["CacheNodeType"] == synth.config.aws.redis.node_type
    assert props["SecurityGroupIds"] and props["CacheSubnetGroupName"]
    multi_az = env == "prod"
    assert props["MultiAZEnabled"] is multi_az
    assert props["AutomaticFailoverEnabled"] is multi_az
    assert props["ReplicasPerNodeGroup"] == (1 if multi_az else 0)
    ((parameters_id, parameters),) = synth.resources("online-stores", "AWS::ElastiCache::ParameterGroup").items()
    assert props["CacheParameterGroupName"] == {"Ref": parameters_id}
    family = f"redis{synth.config.aws.redis.engine_version.split('.')[0]}"
    assert parameters["Properties"]["CacheParameterGroupFamily"] == family
    assert parameters["Properties"]["Properties"] == SERVER_PARAMETERS, "what the Redis store expects"
    (secret,) = synth.resources("online-stores", "AWS::SecretsManager::Secret").values()
    assert "KmsKeyId" in secret["Properties"]
    assert secret["Properties"]["GenerateSecretString"]["ExcludePunctuation"] is True


@pytest.mark.parametrize("env", ENVS)
def test_dynamodb_is_on_demand_with_pitr_and_kms(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    (table,) = synthesized[env].resources("online-stores", "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["TableName"] == f"rankops-{env}-entity-stats"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True and props["SSESpecification"]["SSEType"] == "KMS"
    assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props.get("DeletionProtectionEnabled", False) is (env == "prod")
    assert table["DeletionPolicy"] == ("Retain" if env == "prod" else "Delete")
