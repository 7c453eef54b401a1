"""CloudFormation's intrinsic functions over a set of synthesized stacks, without CloudFormation.

moto's CloudFormation cannot deploy rankops' templates (KMS ``GetAtt``, alarms, ElastiCache, the
MLflow server and EMR Serverless are unsupported there), so a rehearsal reads each resource's
properties from the templates and creates it through the service's own API. This module is the
part of CloudFormation that makes that possible: every logical id gets a deterministic physical
name (its name property when the template sets one, else ``<stack>-<logical id>`` as CloudFormation
would, minus the random suffix), and ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``,
``Fn::Select``, ``Fn::Split``, ``Fn::ImportValue`` (exports across stacks), ``Fn::If`` with
conditions and ``{{resolve:secretsmanager:...}}`` dynamic references resolve to those names.

Values that only the service can assign (a KMS key id, a secret's ARN, the Redis endpoint) are
given to the resolver by whoever created the resource (:meth:`Resolver.assign`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rankops.errors import RankopsError

ACCOUNT = "123456789012"

# The property holding a resource's physical name, per type (absent: CloudFormation generates one).
NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Events::Rule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SageMaker::MlflowTrackingServer": "TrackingServerName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::EMRServerless::Application": "Name",
    "AWS::CodeBuild::Project": "Name",
    "AWS::ElastiCache::ReplicationGroup": "ReplicationGroupId",
}
NAME_LIMIT = {"AWS::S3::Bucket": 63, "AWS::IAM::Role": 64, "AWS::Lambda::Function": 64, "AWS::Events::Rule": 64}

# ARN templates ({p}artition, {r}egion, {a}ccount, {n}ame) and whether Ref gives the ARN.
_ARN: dict[str, tuple[str, bool]] = {
    "AWS::S3::Bucket": ("arn:aws:s3:::{n}", False),
    "AWS::DynamoDB::Table": ("arn:aws:dynamodb:{r}:{a}:table/{n}", False),
    "AWS::SNS::Topic": ("arn:aws:sns:{r}:{a}:{n}", True),
    "AWS::Lambda::Function": ("arn:aws:lambda:{r}:{a}:function:{n}", False),
    "AWS::StepFunctions::StateMachine": ("arn:aws:states:{r}:{a}:stateMachine:{n}", True),
    "AWS::CloudWatch::Alarm": ("arn:aws:cloudwatch:{r}:{a}:alarm:{n}", False),
    "AWS::Events::Rule": ("arn:aws:events:{r}:{a}:rule/{n}", False),
    "AWS::Logs::LogGroup": ("arn:aws:logs:{r}:{a}:log-group:{n}:*", False),
    "AWS::IAM::Role": ("arn:aws:iam::{a}:role/{n}", False),
    "AWS::ECR::Repository": ("arn:aws:ecr:{r}:{a}:repository/{n}", False),
    "AWS::SageMaker::Model": ("arn:aws:sagemaker:{r}:{a}:model/{n}", True),
    "AWS::SageMaker::EndpointConfig": ("arn:aws:sagemaker:{r}:{a}:endpoint-config/{n}", True),
    "AWS::SageMaker::Endpoint": ("arn:aws:sagemaker:{r}:{a}:endpoint/{n}", True),
    "AWS::SageMaker::MlflowTrackingServer": ("arn:aws:sagemaker:{r}:{a}:mlflow-tracking-server/{n}", False),
    "AWS::SecretsManager::Secret": ("arn:aws:secretsmanager:{r}:{a}:secret:{n}", True),
    "AWS::EMRServerless::Application": ("arn:aws:emr-serverless:{r}:{a}:/applications/{n}", False),
    "AWS::CodeBuild::Project": ("arn:aws:codebuild:{r}:{a}:project/{n}", False),
}
# Ids EC2-like services assign (``vpc-...``): a stable hash of the logical id stands in.
_ID_PREFIX = {
    "AWS::EC2::VPC": "vpc",
    "AWS::EC2::Subnet": "subnet",
    "AWS::EC2::SecurityGroup": "sg",
    "AWS::EC2::RouteTable": "rtb",
    "AWS::EC2::VPCEndpoint": "vpce",
}
_SUB = re.compile(r"\$\{([^}]+)\}")
_DYNAMIC = re.compile(r"\{\{resolve:secretsmanager:(.+?):SecretString:([^:]*):([^:]*):([^:]*)\}\}")


def _hash(text: str, n: int = 17) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass
class Resolver:
    """Intrinsics over ``templates`` (stack name -> template dict) in one account and region."""

    templates: Mapping[str, Mapping[str, Any]]
    region: str
    secret_value: Callable[[str], str] | None = None  # reads a secret for ``{{resolve:secretsmanager:...}}``
    _assigned: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    _exports: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export is not None:
                    self._exports[self.resolve(stack, export)] = (stack, output["Value"])

    # -- what a resource is called -------------------------------------------------------------
    def resource(self, stack: str, logical_id: str) -> Mapping[str, Any]:
        try:
            return dict(self.templates[stack]["Resources"][logical_id])
        except KeyError:
            raise RankopsError(f"{stack}: no resource {logical_id!r} in the template") from None

    def resources(self, type_: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(stack, logical id, resource) of every resource of ``type_`` whose condition holds."""
        return [
            (stack, logical_id, resource)
            for stack, template in self.templates.items()
            for logical_id, resource in template.get("Resources", {}).items()
            if resource["Type"] == type_ and self.condition(stack, resource.get("Condition"))
        ]

    def assign(self, stack: str, logical_id: str, attribute: str, value: Any) -> None:
        """Record a value the service assigned (``Ref`` or a ``GetAtt`` attribute name)."""
        self._assigned[(stack, logical_id, attribute)] = value

    def name(self, stack: str, logical_id: str) -> str:
        """The physical name: the template's name property, else ``<stack>-<logical id>``."""
        type_ = self.resource(stack, logical_id)["Type"]
        prop = NAME_PROPERTY.get(type_)
        given = self.resource(stack, logical_id).get("Properties", {}).get(prop) if prop else None
        if given is not None:
            return str(self.resolve(stack, given))
        if type_ in _ID_PREFIX:
            return f"{_ID_PREFIX[type_]}-{_hash(stack + logical_id)}"
        generated = f"{stack}-{logical_id}"
        if type_ == "AWS::S3::Bucket":
            generated = generated.lower()
        return generated[: NAME_LIMIT.get(type_, 255)]

    def arn(self, stack: str, logical_id: str) -> str:
        type_ = self.resource(stack, logical_id)["Type"]
        if (stack, logical_id, "Arn") in self._assigned:
            return str(self._assigned[(stack, logical_id, "Arn")])
        if type_ not in _ARN:
            raise RankopsError(f"{stack}/{logical_id}: no ARN known for {type_}")
        return _ARN[type_][0].format(r=self.region, a=ACCOUNT, n=self.name(stack, logical_id))

    def ref(self, stack: str, logical_id: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack,
            "AWS::NoValue": None,
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id in self.templates[stack].get("Parameters", {}):
            return self.templates[stack]["Parameters"][logical_id].get("Default")
        if (stack, logical_id, "Ref") in self._assigned:
            return self._assigned[(stack, logical_id, "Ref")]
        type_ = self.resource(stack, logical_id)["Type"]
        return self.arn(stack, logical_id) if _ARN.get(type_, ("", False))[1] else self.name(stack, logical_id)

    def get_att(self, stack: str, logical_id: str, attribute: str) -> Any:
        if (stack, logical_id, attribute) in self._assigned:
            return self._assigned[(stack, logical_id, attribute)]
        if attribute in ("Arn", "TrackingServerArn"):
            return self.arn(stack, logical_id)
        type_ = self.resource(stack, logical_id)["Type"]
        if attribute in ("GroupId", "ApplicationId") or attribute == NAME_PROPERTY.get(type_):
            return self.name(stack, logical_id)
        if attribute == "Name" or attribute.endswith("Name"):
            return self.name(stack, logical_id)
        raise RankopsError(f"{stack}/{logical_id}: attribute {attribute!r} of {type_} is not known to the rehearsal")

    # -- conditions and expressions -------------------------------------------------------------
    def condition(self, stack: str, name: str | None) -> bool:
        if name is None:
            return True
        return bool(self.resolve(stack, self.templates[stack]["Conditions"][name]))

    def resolve(self, stack: str, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated in the context of ``stack``."""
        if isinstance(value, list):
            return [v for v in (self.resolve(stack, item) for item in value) if v is not None]
        if isinstance(value, str):
            return self._dynamic(value)
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            fn = _FUNCTIONS.get(key)
            if fn is not None:
                result = fn(self, stack, arg)
                return self._dynamic(result) if isinstance(result, str) else result
        return {k: v for k, v in ((k, self.resolve(stack, v)) for k, v in value.items()) if v is not None}

    def _dynamic(self, text: str) -> str:
        def secret(match: re.Match[str]) -> str:
            if self.secret_value is None:
                raise RankopsError(f"dynamic reference {match.group(0)!r} needs Secrets Manager")
            return self.secret_value(match.group(1))

        return _DYNAMIC.sub(secret, text)

    def _sub(self, stack: str, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(stack, arg[1]))

        def one(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(variables[token])
            if "." in token and not token.startswith("AWS::"):
                logical_id, _, attribute = token.partition(".")
                return str(self.get_att(stack, logical_id, attribute))
            return str(self.ref(stack, token))

        return self._dynamic(_SUB.sub(one, text))

    def _import(self, stack: str, arg: Any) -> Any:
        name = self.resolve(stack, arg)
        if name not in self._exports:
            raise RankopsError(f"{stack}: Fn::ImportValue {name!r} is exported by no stack of the environment")
        exporter, value = self._exports[name]
        return self.resolve(exporter, value)


def _get_att(r: Resolver, stack: str, arg: Any) -> Any:
    logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
    return r.get_att(stack, logical_id, r.resolve(stack, attribute))


def _if(r: Resolver, stack: str, arg: Any) -> Any:
    name, then, otherwise = arg
    chosen = then if r.condition(stack, name) else otherwise
    if chosen == {"Ref": "AWS::NoValue"}:
        return None
    return r.resolve(stack, chosen)


_FUNCTIONS: dict[str, Callable[[Resolver, str, Any], Any]] = {
    "Ref": lambda r, s, a: r.ref(s, a),
    "Fn::GetAtt": _get_att,
    "Fn::Join": lambda r, s, a: str(a[0]).join(str(v) for v in r.resolve(s, a[1])),
    "Fn::Sub": lambda r, s, a: r._sub(s, a),
    "Fn::Select": lambda r, s, a: r.resolve(s, a[1])[int(r.resolve(s, a[0]))],
    "Fn::Split": lambda r, s, a: str(r.resolve(s, a[1])).split(a[0]),
    "Fn::ImportValue": lambda r, s, a: r._import(s, a),
    "Fn::If": _if,
    "Fn::Equals": lambda r, s, a: r.resolve(s, a[0]) == r.resolve(s, a[1]),
    "Fn::Not": lambda r, s, a: not r.resolve(s, a[0]),
    "Fn::And": lambda r, s, a: all(r.resolve(s, v) for v in a),
    "Fn::Or": lambda r, s, a: any(r.resolve(s, v) for v in a),
    "Condition": lambda r, s, a: r.condition(s, a),
    "Fn::Base64": lambda r, s, a: r.resolve(s, a),
    "Fn::GetAZs": lambda r, s, a: [f"{r.region}{z}" for z in "abc"],
}
