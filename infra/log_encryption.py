"""Every log group of a stack encrypted with the stack's own customer-managed key.

Log groups hold what must not be readable with only ``logs:*``: the state machine's
execution data (inputs, outputs, task tokens), Lambda and job output, the endpoint's
answers. Applied once per stack after the stack is built (as tags and cdk-nag are), so
no construct can add a log group that is left unencrypted; a log group that names its
own key keeps it.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from infra.config import EnvConfig

KEY_ID = "LogsKey"


def encrypt_log_groups(stack: Stack, config: EnvConfig) -> kms.Key | None:
    """Give every ``AWS::Logs::LogGroup`` of ``stack`` without a key the stack's logs key."""
    groups = [c for c in stack.node.find_all() if isinstance(c, logs.CfnLogGroup) and c.kms_key_id is None]
    if not groups:
        return None
    key = kms.Key(
        stack,
        KEY_ID,
        description=f"{stack.stack_name} CloudWatch log groups",
        enable_key_rotation=True,
        removal_policy=config.removal_policy,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsUse",  # the documented key policy for CloudWatch Logs, scoped to this account
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    )
                }
            },
        )
    )
    for group in groups:
        group.kms_key_id = key.key_arn
    return key
