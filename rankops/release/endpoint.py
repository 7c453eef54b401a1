"""Release has one home: an :class:`Endpoint` is where a model version is served, and the
pipeline's release Lambda drives it through this one interface.

The event says what to do (``baseline``, ``deploy``, ``shadow``, ``canary``, ``route``, ``promote``,
``rollback``, ``check``) and which endpoint: a SageMaker endpoint name
(:class:`rankops.release.sagemaker_endpoint.SageMakerEndpoint`), or ``local:<RANKOPS_HOME>`` for
the local inference server (:class:`rankops.release.local_endpoint.LocalEndpoint`). The decisions
(what a shadow or canary must show before it may advance, which traffic goes where) are
:mod:`rankops.release`'s in both; only the mechanism differs.

Standard library at import time (the Lambda runtime); an implementation is imported when opened.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Protocol, runtime_checkable

from rankops.errors import ReleaseError

LOCAL_PREFIX = "local:"
ACTIONS = ("baseline", "deploy", "shadow", "canary", "route", "promote", "rollback", "check")
# The environment's blue/green policy (JSON, DeploymentPolicy fields), set on the release Lambda by
# infra from aws.endpoint; an event's "policy" wins over it.
DEPLOYMENT_POLICY_VARIABLE = "DEPLOYMENT_POLICY"
# The environment's post-traffic thresholds (JSON, PostTrafficEvent fields), set on the release
# Lambda by infra from release.*; an event's "post_traffic" wins over them.
CHECK_THRESHOLDS_VARIABLE = "CHECK_THRESHOLDS"
# release.bucket_salt: with the challenger's version, the salt of the sticky canary's user buckets
ROUTING_SALT_VARIABLE = "ROUTING_SALT"


@runtime_checkable
class Endpoint(Protocol):
    """Where versions are served. ``run`` performs one release action and answers with what it did;
    ``describe`` is ``DescribeEndpoint``'s answer (``EndpointStatus``, ``EndpointConfigName``), which
    the state machine polls until an update has settled."""

    name: str

    def run(self, action: str, event: dict[str, Any]) -> dict[str, Any]: ...

    def describe(self) -> dict[str, Any]: ...


# endpoint-name scheme -> "module:Class"; a name without a known scheme is a SageMaker endpoint
_KINDS = {LOCAL_PREFIX: "rankops.release.local_endpoint:LocalEndpoint"}
_SAGEMAKER = "rankops.release.sagemaker_endpoint:SageMakerEndpoint"


def open_endpoint(name: str) -> Endpoint:
    """The endpoint ``name`` denotes (``local:<home>`` or a SageMaker endpoint name)."""
    if not name:
        raise ReleaseError("the release step needs an endpoint (a SageMaker endpoint name or local:<home>)")
    prefix = next((p for p in _KINDS if name.startswith(p)), "")
    module, _, cls = (_KINDS[prefix] if prefix else _SAGEMAKER).partition(":")
    endpoint: Endpoint = getattr(importlib.import_module(module), cls).open(name[len(prefix) :])
    return endpoint


def release_step(event: dict[str, Any]) -> dict[str, Any]:
    """One release action of the pipeline (the release Lambda's whole work)."""
    action = event.get("action")
    if action not in ACTIONS:
        raise ReleaseError(f"unknown release action {action!r}; expected one of {', '.join(ACTIONS)}")
    return open_endpoint(str(event.get("endpoint", ""))).run(str(action), event)


def deployment_policy(event: dict[str, Any]) -> dict[str, Any]:
    """The blue/green policy of a promote/deploy: the event's ``policy``, else ``$DEPLOYMENT_POLICY``."""
    if event.get("policy"):
        return dict(event["policy"])
    return _json_variable(DEPLOYMENT_POLICY_VARIABLE)


def check_thresholds() -> dict[str, Any]:
    """The post-traffic thresholds of this environment (``$CHECK_THRESHOLDS``; empty: the defaults)."""
    return _json_variable(CHECK_THRESHOLDS_VARIABLE)


def _json_variable(variable: str) -> dict[str, Any]:
    raw = os.environ.get(variable, "")
    try:
        return dict(json.loads(raw)) if raw else {}
    except (TypeError, ValueError) as err:
        raise ReleaseError(f"{variable} is not a JSON object: {raw!r}") from err
