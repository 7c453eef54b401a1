"""AWS resources in moto built from what CDK synthesizes (never from what the code under test
would create for itself): the seam tests' view of the deployed system."""

from __future__ import annotations

from typing import Any

# The properties of AWS::DynamoDB::Table that shape every call (encryption, PITR and deletion
# protection change no request's validity, and moto ignores them).
TABLE_PROPERTIES = ("KeySchema", "AttributeDefinitions", "BillingMode")


def only_resource(template: dict[str, Any], type_: str) -> dict[str, Any]:
    """The properties of the one resource of ``type_`` in ``template``."""
    found = [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]
    assert len(found) == 1, f"expected one {type_} in the template, found {len(found)}"
    return found[0]


def create_dynamodb_table(client: Any, template: dict[str, Any], table_name: str) -> dict[str, Any]:
    """Create the template's DynamoDB table (key schema, attribute definitions, billing, TTL) in moto
    under ``table_name``; returns the template's properties."""
    props = only_resource(template, "AWS::DynamoDB::Table")
    client.create_table(TableName=table_name, **{k: props[k] for k in TABLE_PROPERTIES if k in props})
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    return props


# -- the pipeline as deployed ------------------------------------------------------------------
ACCOUNT, REGION = "123456789012", "eu-west-1"


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def deployed_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The state machine's definition with its ``DefinitionSubstitutions`` filled: literal values as
    deployed; values CloudFormation resolves at deploy time (imports, ARNs) as stand-ins named after
    their key (step Lambdas: ``rankops-<name>``, see :func:`lambda_arn`)."""
    import json

    from stepfunctions.definition import substitute

    props = only_resource(template, "AWS::StepFunctions::StateMachine")
    values = {}
    for key, value in props["DefinitionSubstitutions"].items():
        if isinstance(value, str):
            values[key] = value
        elif key.startswith("LambdaArn_"):
            values[key] = lambda_arn("rankops-" + key.removeprefix("LambdaArn_"))
        else:
            values[key] = f"deployed-{key}"
    return dict(json.loads(substitute(props["DefinitionString"], values)))


def lambda_environment(template: dict[str, Any], handler: str) -> dict[str, str]:
    """The literal environment variables of the function whose handler is ``handler``."""
    functions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
    ]
    assert len(functions) == 1, f"expected one function with handler {handler}, found {len(functions)}"
    variables = functions[0].get("Environment", {}).get("Variables", {})
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
