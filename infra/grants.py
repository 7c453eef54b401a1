"""IAM statements several constructs need, written once with the reason they look the way they do."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.config import METRICS_NAMESPACE

# SageMaker's documented VPC permissions; the Describe calls have no resource types.
VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)


def grant_vpc_access(role: iam.IRole) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(VPC_ACTIONS), resources=["*"]))


def grant_sagemaker_logs(role: iam.IRole, kind: str) -> None:
    """Write to SageMaker's own log groups (``/aws/sagemaker/<kind>``), which SageMaker names."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/{kind}*"],
        )
    )


def grant_put_metrics(role: iam.IRole) -> None:
    """PutMetricData has no resource-level permissions; pin it to the rankops namespace."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        )
    )


def grant_objects_read_write(bucket: s3.IBucket, grantee: iam.IGrantable, objects: str = "*") -> None:
    """Read, write and delete the current version of objects, never a past one.

    ``bucket.grant_read_write`` allows ``s3:DeleteObject*``, which includes ``s3:DeleteObjectVersion``:
    a workload (or whoever takes over its role) could then erase the versions that make the
    lake's versioning a recovery path. Deleting an object in a versioned bucket only adds a
    delete marker, so ``s3:DeleteObject`` is all a workload needs."""
    bucket.grant_read(grantee, objects)
    bucket.grant_put(grantee, objects)
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[bucket.arn_for_objects(objects)])
    )
