"""Lineage records on S3, in the artifacts bucket as CDK deploys it (versioned, KMS-encrypted)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rankops import lineage
from rankops.errors import LakeError
from tests.deployed import REGION, deployed_world
from tests.unit.test_lineage import record


def test_records_live_on_s3_too(synthesized_env: Any) -> None:
    with mock_aws():
        world = deployed_world(synthesized_env("dev"))
        bucket = world.resolve("data-lake", {"Ref": artifacts_bucket(world)})
        s3 = boto3.client("s3", region_name=REGION)
        root = f"s3://{bucket}/zone"
        uri = lineage.write_record(root, record(), s3=s3)
        assert uri == f"{root}/lineage/rankops-ranker/v3.json"
        lineage.append_event(root, "rankops-ranker", "3", "rollback", {"to": "2"}, s3=s3)
        body = json.loads(s3.get_object(Bucket=bucket, Key="zone/lineage/rankops-ranker/v3.json")["Body"].read())
        assert body["events"][-1]["type"] == "rollback" and body["events"][-1]["to"] == "2"
        versions = s3.list_object_versions(Bucket=bucket, Prefix="zone/lineage/")["Versions"]
        assert len(versions) == 2, "the deployed bucket is versioned: the record before the event is kept"
        with pytest.raises(LakeError, match="no lineage record"):
            lineage.read_record(root, "rankops-ranker", "4", s3=s3)


def artifacts_bucket(world: Any) -> str:
    """The logical id of the lake stack's artifacts bucket."""
    (found,) = [
        logical_id
        for stack, logical_id, _ in world.resolver.resources("AWS::S3::Bucket")
        if stack.endswith("-data-lake") and "Artifacts" in logical_id
    ]
    return str(found)
