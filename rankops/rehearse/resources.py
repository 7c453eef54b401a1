"""Create the templates' resources through each service's own API (moto in server mode).

One function per resource type, each reading the resolved ``Properties`` and calling the API
that CloudFormation's resource handler would call. Properties that moto cannot honour or that a
rehearsal does not exercise (lifecycle rules, IAM policies, VPC plumbing) are left out here and
listed in ``docs/rehearsal.md``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from rankops.rehearse.intrinsics import Resolver

Clients = Callable[[str], Any]  # service name -> boto3 client on the moto server
Rewrite = Callable[[Any], Any]  # a resolved value with the local stand-ins substituted


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in props.get("Tags", [])]


def create_kms_keys(r: Resolver, client: Clients) -> None:
    """KMS keys first: their ids are the service's to assign, and other resources name them."""
    kms = client("kms")
    for stack, logical_id, res in r.resources("AWS::KMS::Key"):
        props = r.resolve(stack, res.get("Properties", {}))
        key = kms.create_key(
            Description=props.get("Description", logical_id),
            Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(props)],
        )["KeyMetadata"]
        r.assign(stack, logical_id, "Ref", key["KeyId"])
        r.assign(stack, logical_id, "Arn", key["Arn"])
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key["KeyId"])
    for stack, _, res in r.resources("AWS::KMS::Alias"):
        props = r.resolve(stack, res["Properties"])
        kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])


def create_secrets(r: Resolver, client: Clients) -> None:
    sm = client("secretsmanager")
    for stack, logical_id, res in r.resources("AWS::SecretsManager::Secret"):
        props = r.resolve(stack, res.get("Properties", {}))
        generate = props.get("GenerateSecretString", {})
        value = (
            props.get("SecretString")
            or sm.get_random_password(
                PasswordLength=int(generate.get("PasswordLength", 32)),
                ExcludePunctuation=bool(generate.get("ExcludePunctuation", False)),
                ExcludeCharacters=generate.get("ExcludeCharacters", ""),
            )["RandomPassword"]
        )
        created = sm.create_secret(
            Name=r.name(stack, logical_id), Description=props.get("Description", ""), SecretString=value
        )
        r.assign(stack, logical_id, "Ref", created["ARN"])


def create_queues(r: Resolver, client: Clients) -> None:
    """SQS queues (dead-letter queues of rules and jobs): their URL is ``Ref``, their ARN ``Arn``."""
    sqs = client("sqs")
    for stack, logical_id, res in r.resources("AWS::SQS::Queue"):
        props = r.resolve(stack, res.get("Properties", {}))
        attributes = {k: str(props[k]) for k in ("MessageRetentionPeriod", "VisibilityTimeout") if k in props}
        url = sqs.create_queue(QueueName=r.name(stack, logical_id), Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        r.assign(stack, logical_id, "Ref", url)
        r.assign(stack, logical_id, "Arn", arn)


def create_roles(r: Resolver, client: Clients) -> None:
    iam = client("iam")
    for stack, logical_id, res in r.resources("AWS::IAM::Role"):
        props = r.resolve(stack, res["Properties"])
        role = iam.create_role(
            RoleName=r.name(stack, logical_id),
            Path=props.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        )["Role"]
        r.assign(stack, logical_id, "Arn", role["Arn"])


def create_buckets(r: Resolver, client: Clients) -> None:
    s3 = client("s3")
    for stack, logical_id, res in r.resources("AWS::S3::Bucket"):
        props = r.resolve(stack, res.get("Properties", {}))
        name = r.name(stack, logical_id)
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": r.region})
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        if props.get("BucketEncryption"):
            rules = [  # CloudFormation's ServerSideEncryptionByDefault is the API's Apply...ByDefault
                {("Apply" + k if k == "ServerSideEncryptionByDefault" else k): v for k, v in rule.items()}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )


def create_tables(r: Resolver, client: Clients) -> None:
    ddb = client("dynamodb")
    for stack, logical_id, res in r.resources("AWS::DynamoDB::Table"):
        create_table(ddb, r.resolve(stack, res["Properties"]), r.name(stack, logical_id))


def create_table(ddb: Any, props: dict[str, Any], name: str) -> None:
    """One ``AWS::DynamoDB::Table`` (resolved properties) as ``name``: key schema, attribute
    definitions, billing, indexes, stream, deletion protection, tags and TTL."""
    args: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        "Tags": _tags(props),
    }
    if args["BillingMode"] == "PROVISIONED":
        args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
        if key in props:
            args[key] = props[key]
    if "DeletionProtectionEnabled" in props:
        args["DeletionProtectionEnabled"] = props["DeletionProtectionEnabled"]
    ddb.create_table(**args)
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def create_topics(r: Resolver, client: Clients) -> None:
    sns = client("sns")
    for stack, logical_id, res in r.resources("AWS::SNS::Topic"):
        props = r.resolve(stack, res.get("Properties", {}))
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        arn = sns.create_topic(Name=r.name(stack, logical_id), Attributes=attributes, Tags=_tags(props))["TopicArn"]
        r.assign(stack, logical_id, "Ref", arn)


def create_logs(r: Resolver, client: Clients) -> None:
    logs = client("logs")
    for stack, logical_id, _ in r.resources("AWS::Logs::LogGroup"):
        logs.create_log_group(logGroupName=r.name(stack, logical_id))
    for stack, logical_id, res in r.resources("AWS::Logs::MetricFilter"):
        props = r.resolve(stack, res["Properties"])
        transformations = [
            {
                **{k[0].lower() + k[1:]: v for k, v in t.items() if k != "Dimensions"},
                **({"dimensions": {d["Key"]: d["Value"] for d in t["Dimensions"]}} if "Dimensions" in t else {}),
            }
            for t in props["MetricTransformations"]
        ]
        logs.put_metric_filter(
            logGroupName=props["LogGroupName"],
            filterName=props.get("FilterName", f"{stack}-{logical_id}"),
            filterPattern=props["FilterPattern"],
            metricTransformations=transformations,
        )


def create_repositories(r: Resolver, client: Clients) -> None:
    ecr = client("ecr")
    for stack, logical_id, _ in r.resources("AWS::ECR::Repository"):
        ecr.create_repository(repositoryName=r.name(stack, logical_id))


_ALARM_KEYS = [
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
]


def create_alarms(r: Resolver, client: Clients) -> None:
    """Alarms with their template properties, one to one (PutMetricAlarm takes the same fields)."""
    cw = client("cloudwatch")
    for stack, logical_id, res in r.resources("AWS::CloudWatch::Alarm"):
        props = r.resolve(stack, res["Properties"])
        args = {k: props[k] for k in _ALARM_KEYS if k in props}
        if "Threshold" in args:
            args["Threshold"] = float(args["Threshold"])
        cw.put_metric_alarm(AlarmName=r.name(stack, logical_id), Tags=_tags(props), **args)
    for stack, logical_id, res in r.resources("AWS::CloudWatch::Dashboard"):
        props = r.resolve(stack, res["Properties"])
        cw.put_dashboard(DashboardName=r.name(stack, logical_id), DashboardBody=props["DashboardBody"])


def _zip_stub() -> bytes:
    """The function's code is not uploaded: the rehearsal runs its handler from this checkout."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README", "rankops rehearsal: handlers run in-process from the checkout\n")
    return buf.getvalue()


def create_functions(r: Resolver, client: Clients, rewrite: Rewrite) -> dict[str, dict[str, str]]:
    """Every Lambda function with its template environment; returns {function name: environment}."""
    lam = client("lambda")
    environments: dict[str, dict[str, str]] = {}
    for stack, logical_id, res in r.resources("AWS::Lambda::Function"):
        props = r.resolve(stack, res["Properties"])
        name = r.name(stack, logical_id)
        env = {k: str(v) for k, v in rewrite(props.get("Environment", {}).get("Variables", {})).items()}
        lam.create_function(
            FunctionName=name,
            Runtime=props.get("Runtime", "python3.12"),
            Role=props["Role"],
            Handler=props["Handler"],
            Code={"ZipFile": _zip_stub()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": env},
        )
        environments[name] = env
    return environments


def create_state_machines(r: Resolver, client: Clients, rewrite: Rewrite) -> dict[str, str]:
    """Each state machine with its ``DefinitionSubstitutions`` applied, as Step Functions does on
    deploy; returns {name: ARN}."""
    from stepfunctions.definition import substitute

    sfn = client("stepfunctions")
    machines: dict[str, str] = {}
    for stack, logical_id, res in r.resources("AWS::StepFunctions::StateMachine"):
        props = r.resolve(stack, res["Properties"])
        values = {k: str(v) for k, v in rewrite(props.get("DefinitionSubstitutions", {})).items()}
        definition = substitute(props["DefinitionString"], values)
        name = r.name(stack, logical_id)
        machines[name] = sfn.create_state_machine(
            name=name, definition=definition, roleArn=props["RoleArn"], type=props.get("StateMachineType", "STANDARD")
        )["stateMachineArn"]
        r.assign(stack, logical_id, "Ref", machines[name])
    return machines


def create_rules(r: Resolver, client: Clients) -> None:
    events = client("events")
    for stack, logical_id, res in r.resources("AWS::Events::Rule"):
        props = r.resolve(stack, res["Properties"])
        name = r.name(stack, logical_id)
        args = {"Name": name, "State": props.get("State", "ENABLED"), "Description": props.get("Description", "")}
        if "EventPattern" in props:
            args["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            args["ScheduleExpression"] = props["ScheduleExpression"]
        events.put_rule(**args)
        if props.get("Targets"):
            events.put_targets(Rule=name, Targets=props["Targets"])
