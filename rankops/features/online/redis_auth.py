"""ElastiCache's Redis AUTH token, read from Secrets Manager when a client is made: the token
never sits in config files, environment variables or the template (the replication group takes a
dynamic reference to the same secret, ``infra/constructs/online_stores.py``)."""

from __future__ import annotations

from typing import Any

from rankops.errors import StoreError


def auth_token(secret_arn: str, client: Any = None) -> str:
    """ElastiCache's AUTH token from Secrets Manager (read when a client is made, never at import).
    The secret is either the bare token or JSON with a ``password`` or ``token`` field."""
    import json

    import boto3

    try:
        value = (client or boto3.client("secretsmanager")).get_secret_value(SecretId=secret_arn)["SecretString"]
    except Exception as err:  # any client error: say which secret, and stop (no unauthenticated retry)
        raise StoreError(f"cannot read the Redis AUTH token from {secret_arn}: {err}") from err
    try:
        doc = json.loads(value)
    except json.JSONDecodeError:
        return str(value)
    return str(doc.get("password") or doc.get("token") or value) if isinstance(doc, dict) else str(value)
