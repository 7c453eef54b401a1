"""The data-lake stack: buckets per zone, encryption, TLS-only, lifecycle, tags."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import ENVS


def lake_template(synthesized, env: str) -> Template:  # type: ignore[no-untyped-def]
    return Template.from_json(synthesized[env].template("data-lake"))


@pytest.mark.parametrize("env", ENVS)
def test_zone_buckets_are_kms_encrypted_versioned_private_and_logged(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    template = lake_template(synthesized, env)
    template.resource_count_is("AWS::S3::Bucket", 5)
    zone_buckets = template.find_resources(
        "AWS::S3::Bucket",
        {
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}
                    ]
                }
            }
        },
    )
    assert len(zone_buckets) == 4
    for bucket in zone_buckets.values():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert "LoggingConfiguration" in props
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_denies_plain_http(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    template = lake_template(synthesized, env)
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 5
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_raw_zone_tiers_and_expires(synthesized) -> None:  # type: ignore[no-untyped-def]
    template = lake_template(synthesized, "dev")
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Id": "raw-tiering",
                                "ExpirationInDays": 365,
                                "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}],
                            }
                        )
                    ]
                )
            }
        },
    )


def test_removal_policy_follows_the_environment(synthesized) -> None:  # type: ignore[no-untyped-def]
    dev = lake_template(synthesized, "dev").find_resources("AWS::S3::Bucket")
    prod = lake_template(synthesized, "prod").find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in dev.values()} == {"Delete"}
    assert {b["DeletionPolicy"] for b in prod.values()} == {"Retain"}


@pytest.mark.parametrize("env", ENVS)
def test_stacks_are_tagged(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    template = lake_template(synthesized, env)
    for bucket in template.find_resources("AWS::S3::Bucket").values():
        tags = {t["Key"]: t["Value"] for t in bucket["Properties"]["Tags"]}
        assert tags["env"] == env and tags["project"] == "rankops"
        assert {"owner", "cost-centre"} <= set(tags)


def test_glue_tables_project_the_raw_partitions(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    (database,) = synth.resources("data-lake", "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == "rankops_dev"
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in synth.resources("data-lake", "AWS::Glue::Table").values()
    }
    assert set(tables) == {"events", "items"}
    events = tables["events"]
    assert [k["Name"] for k in events["PartitionKeys"]] == ["dt", "hour"]
    assert events["Parameters"]["projection.enabled"] == "true"
    assert events["Parameters"]["projection.hour.digits"] == "2"
    template = events["Parameters"]["storage.location.template"]
    assert "dt=${dt}/hour=${hour}/" in str(template)
    columns = {c["Name"]: c["Type"] for c in events["StorageDescriptor"]["Columns"]}
    assert columns["ts"] == "timestamp" and columns["clicked"] == "boolean" and columns["revenue"] == "double"
    assert [k["Name"] for k in tables["items"]["PartitionKeys"]] == ["dt"]
