"""Least privilege, checked on every identity policy of every environment.

No statement may allow a wildcard action, and a statement on ``Resource: "*"`` may
only name actions from the allow-list below, each with the reason it cannot be
scoped. (Key and bucket policies are resource policies: there ``*`` means "this
resource"; they are checked in the tests of their constructs.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.conftest import ENVS

# action -> why it is allowed on "*"
ALLOWED_ON_ANY_RESOURCE = {
    "xray:PutTraceSegments": "X-Ray has no resource types (Lambda and Step Functions tracing)",
    "xray:PutTelemetryRecords": "X-Ray has no resource types",
    "xray:GetSamplingRules": "X-Ray has no resource types",
    "xray:GetSamplingTargets": "X-Ray has no resource types",
    "cloudwatch:PutMetricData": "no resource types; every grant is pinned to the rankops namespace (checked below)",
    "cloudwatch:GetMetricData": "no resource types (the release Lambda's checks read endpoint metrics)",
    "sagemaker:ListModels": "List calls have no resource types (the release Lambda reuses a model it made)",
    "sagemaker:ListEndpointConfigs": "List calls have no resource types (the release Lambda reuses its configs)",
    "ecr:GetAuthorizationToken": "registry-wide login token; image pulls/pushes are scoped to our repositories",
    "ec2:CreateNetworkInterface": "SageMaker's documented VPC permissions for jobs and endpoints",
    "ec2:CreateNetworkInterfacePermission": "SageMaker's documented VPC permissions",
    "ec2:DeleteNetworkInterface": "SageMaker's documented VPC permissions",
    "ec2:DeleteNetworkInterfacePermission": "SageMaker's documented VPC permissions",
    "ec2:DescribeNetworkInterfaces": "Describe calls have no resource types",
    "ec2:DescribeVpcs": "Describe calls have no resource types",
    "ec2:DescribeDhcpOptions": "Describe calls have no resource types",
    "ec2:DescribeSubnets": "Describe calls have no resource types",
    "ec2:DescribeSecurityGroups": "Describe calls have no resource types",
    "logs:CreateLogDelivery": "Step Functions log delivery (vended logs) has no resource types",
    "logs:GetLogDelivery": "Step Functions log delivery",
    "logs:UpdateLogDelivery": "Step Functions log delivery",
    "logs:DeleteLogDelivery": "Step Functions log delivery",
    "logs:ListLogDeliveries": "Step Functions log delivery",
    "logs:PutResourcePolicy": "Step Functions log delivery",
    "logs:DescribeResourcePolicies": "Step Functions log delivery",
    "logs:DescribeLogGroups": "Step Functions log delivery",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements(synth: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for stack, logical_id, resource in synth.all_resources():
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(resource["Properties"]["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                yield f"{stack}/{logical_id}", statement


@pytest.mark.parametrize("env", ENVS)
def test_no_wildcard_action_on_any_resource(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    statements = list(identity_statements(synthesized[env]))
    assert len(statements) > 50
    for where, statement in statements:
        assert statement["Effect"] == "Allow", where
        actions = as_list(statement["Action"])
        assert "*" not in actions, f"{where}: Action '*'"
        assert not any(a.endswith(":*") and a != "sagemaker-mlflow:*" for a in actions), f"{where}: {actions}"
        if "*" in as_list(statement.get("Resource")):
            not_allowed = sorted(set(actions) - set(ALLOWED_ON_ANY_RESOURCE))
            assert not not_allowed, f"{where}: {not_allowed} on Resource '*' are not on the documented allow-list"


@pytest.mark.parametrize("env", ENVS)
def test_put_metric_data_is_pinned_to_the_rankops_namespace(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    grants = [s for _, s in identity_statements(synthesized[env]) if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert len(grants) >= 4  # feature job, its starter, SageMaker jobs, the endpoint
    for statement in grants:
        assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "rankops"}}


def test_mlflow_access_is_limited_to_the_tracking_server(synthesized) -> None:  # type: ignore[no-untyped-def]
    for where, statement in identity_statements(synthesized["dev"]):
        if "sagemaker-mlflow:*" in as_list(statement["Action"]):
            (resource,) = as_list(statement["Resource"])
            assert resource != "*", where
            assert "TrackingServerArn" in str(resource), where


def test_pass_role_is_always_conditioned_on_the_service(synthesized) -> None:  # type: ignore[no-untyped-def]
    passes = [(w, s) for w, s in identity_statements(synthesized["prod"]) if "iam:PassRole" in as_list(s["Action"])]
    assert passes
    for where, statement in passes:
        assert "*" not in as_list(statement["Resource"]), where
        if "FlowLog" not in where:  # CDK's VPC flow-log role passes itself to the flow-log service
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"], where
