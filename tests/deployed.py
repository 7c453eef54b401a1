"""AWS resources in moto built from what CDK synthesizes (never from what the code under test
would create for itself): the seam tests' view of the deployed system."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3


def only_resource(template: dict[str, Any], type_: str) -> dict[str, Any]:
    """The properties of the one resource of ``type_`` in ``template``."""
    found = [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]
    assert len(found) == 1, f"expected one {type_} in the template, found {len(found)}"
    return found[0]


def create_dynamodb_table(client: Any, template: dict[str, Any], table_name: str) -> dict[str, Any]:
    """Create the template's DynamoDB table in moto under ``table_name`` with the rehearsal's builder
    (the one a rehearsal's world uses); returns the template's properties."""
    from rankops.rehearse.resources import create_table

    props = only_resource(template, "AWS::DynamoDB::Table")
    create_table(client, props, table_name)  # the rehearsal's builder: every property it maps, as deployed
    return props


# -- the pipeline as deployed ------------------------------------------------------------------
ACCOUNT, REGION = "123456789012", "eu-west-1"


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@dataclass
class DeployedWorld:
    """An environment's KMS keys, IAM roles and S3 buckets created in (in-process) moto from its
    synthesized templates, with the resolver that names everything else as deployed."""

    resolver: Any
    stack_prefix: str

    def resolve(self, stack_suffix: str, value: Any) -> Any:
        return self.resolver.resolve(f"{self.stack_prefix}-{stack_suffix}", value)

    def properties(self, type_: str) -> dict[str, Any]:
        """The resolved properties of the environment's one resource of ``type_``."""
        (found,) = self.resolver.resources(type_)
        return dict(self.resolver.resolve(found[0], found[2]["Properties"]))


def deployed_world(synthesized: Any) -> DeployedWorld:
    """Build ``synthesized``'s buckets (versioning, encryption), keys and roles in the active moto
    mock through the rehearsal's resource builders. ElastiCache has no moto counterpart: its
    endpoint resolves to a local stand-in address (nothing here connects to it)."""
    from rankops.rehearse import resources
    from rankops.rehearse.intrinsics import Resolver
    from rankops.rehearse.world import load_templates

    prefix = synthesized.config.prefix
    resolver = Resolver(load_templates(synthesized.outdir, prefix), REGION, secret_value=lambda arn: "stand-in")
    for stack, logical_id, _ in resolver.resources("AWS::ElastiCache::ReplicationGroup"):
        resolver.assign(stack, logical_id, "PrimaryEndPoint.Address", "127.0.0.1")
        resolver.assign(stack, logical_id, "PrimaryEndPoint.Port", "6379")

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    for create in (resources.create_kms_keys, resources.create_roles, resources.create_buckets):
        create(resolver, client)
    return DeployedWorld(resolver, prefix)


def deployed_definition(template: dict[str, Any], world: DeployedWorld | None = None) -> dict[str, Any]:
    """The state machine's definition with its ``DefinitionSubstitutions`` filled: literal values as
    deployed; step Lambdas as ``rankops-<name>`` (see :func:`lambda_arn`); other values CloudFormation
    resolves at deploy time (imports, ARNs) resolved in ``world`` when given, else stand-ins named
    after their key."""
    from stepfunctions.definition import substitute

    props = only_resource(template, "AWS::StepFunctions::StateMachine")
    values = {}
    for key, value in props["DefinitionSubstitutions"].items():
        if isinstance(value, str):
            values[key] = value
        elif key.startswith("LambdaArn_"):
            values[key] = lambda_arn("rankops-" + key.removeprefix("LambdaArn_"))
        elif world is not None:
            values[key] = str(world.resolve("pipeline", value))
        else:
            values[key] = f"deployed-{key}"
    return dict(json.loads(substitute(props["DefinitionString"], values)))


def lambda_environment(
    template: dict[str, Any], handler: str, world: DeployedWorld | None = None, stack_suffix: str = "pipeline"
) -> dict[str, str]:
    """The environment variables of the function whose handler is ``handler``: the literal ones, and
    with ``world`` also those CloudFormation resolves (bucket names, imports) as deployed."""
    functions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
    ]
    assert len(functions) == 1, f"expected one function with handler {handler}, found {len(functions)}"
    variables = functions[0].get("Environment", {}).get("Variables", {})
    if world is not None:
        return {k: str(world.resolve(stack_suffix, v)) for k, v in variables.items()}
    return {k: v for k, v in variables.items() if isinstance(v, str)}


def with_percentiles() -> Any:
    """moto's CloudWatch answers ``pNN`` statistics (SageMaker's latency checks ask for p95) with
    None; this computes them from the stored values (nearest rank, as CloudWatch does for raw data)."""
    import math

    from moto.cloudwatch import models

    original = models.Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        if stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit():
            values = sorted(self.metric_single_values_list)
            if not values:
                return None
            return values[max(0, math.ceil(float(stat[1:]) / 100 * len(values)) - 1)]
        return original(self, stat)

    return get_statistics_for_type


# -- SageMaker's UpdateEndpoint, which moto lacks ----------------------------------------------
UPDATES: list[dict[str, Any]] = []  # every UpdateEndpoint request, in order


def moto_update_endpoint(self: Any) -> Any:
    """``UpdateEndpoint`` for moto's SageMaker (installed on ``SageMakerResponse``): the endpoint
    switches to the new config at once. It enforces what SageMaker enforces for a guarded update:
    a ``BlueGreenUpdatePolicy`` needs the new config to keep the live variant names."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    request = {k: self._get_param(k) for k in ("EndpointName", "EndpointConfigName", "DeploymentConfig")}
    backend = self.sagemaker_backend
    endpoint = backend.endpoints[request["EndpointName"]]
    new = backend.describe_endpoint_config(request["EndpointConfigName"])
    if (request["DeploymentConfig"] or {}).get("BlueGreenUpdatePolicy"):
        live = sorted(v["VariantName"] for v in endpoint.production_variants)
        names = sorted(v["VariantName"] for v in new["ProductionVariants"])
        if live != names:
            raise ValidationError(
                f"a blue/green update needs the new endpoint config to keep the variant names {live}, got {names}"
            )
    UPDATES.append(request)
    endpoint.endpoint_config_name = request["EndpointConfigName"]
    endpoint.production_variants = endpoint._process_production_variants(new["ProductionVariants"])
    return ActionResult({"EndpointArn": endpoint.arn})


def botocore_instance_types(self: Any, instance_type: str) -> None:
    """moto's endpoint-config instance types are an old list (no ``ml.c6i.*``, which infra deploys);
    the SageMaker service model botocore ships is the API's own list."""
    import botocore.session
    from moto.sagemaker.exceptions import ValidationError

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ProductionVariantInstanceType")
    if instance_type not in shape.enum:
        raise ValidationError(message=f"Value {instance_type!r} at 'instanceType' is not a SageMaker instance type")


def moto_list_models(self: Any) -> Any:
    """moto's ``ListModels`` ignores ``NameContains``; SageMaker filters by it (the release Lambda
    finds a model an earlier attempt created that way)."""
    from moto.core.responses import ActionResult

    contains = self._get_param("NameContains") or ""
    models = [m.response_object for m in self.sagemaker_backend.list_models() if contains in m.model_name]
    return ActionResult({"Models": models})


# -- running deployed states in moto's interpreter ----------------------------------------------
def run_states(states: dict[str, Any], names: list[str], state_input: dict[str, Any]) -> dict[str, Any]:
    """Execute deployed ``names`` (starting at the first) on their own. A transition to any other
    state ends the run there, recording its name at ``$.ended_in``; a failure fails the run."""
    graph = {n: states[n] for n in names}
    targets = {
        t
        for state in graph.values()
        for t in [state.get("Next"), state.get("Default"), *[c.get("Next") for c in state.get("Choices", [])]]
        + [c["Next"] for c in state.get("Catch", [])]
        if t
    }
    for target in targets - set(graph):
        graph[target] = {"Type": "Pass", "Result": target, "ResultPath": "$.ended_in", "End": True}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name=f"part-{names[0].rstrip('?')}-{time.time_ns()}",
        definition=json.dumps({"StartAt": names[0], "States": graph}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(state_input))["executionArn"]
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.02)
    assert described["status"] == "SUCCEEDED", sfn.get_execution_history(executionArn=execution)["events"][-2:]
    return dict(json.loads(described["output"]))


def run_state(state: dict[str, Any], name: str, state_input: dict[str, Any]) -> dict[str, Any]:
    """Execute one deployed state on its own (its Catch removed, so a failure fails the run)."""
    alone = {k: v for k, v in state.items() if k not in ("Next", "Catch")} | {"End": True}
    return run_states({name: alone}, [name], state_input)
