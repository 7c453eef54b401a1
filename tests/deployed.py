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
