"""The seam between the pipeline definition (``stepfunctions/``) and the CDK stack that deploys it.

Contract for ``stepfunctions/definition.py`` (owned by the pipeline):

    def render(resources: Mapping[str, str]) -> dict | str:
        '''The state machine as Amazon States Language, with ``resources[key]``
        wherever the definition needs a resource name or ARN.'''

CDK calls it with ``{key: "${key}"}`` for every key in :data:`RESOURCE_KEYS` and hands
the text to ``DefinitionBody.from_string`` with ``definition_substitutions`` mapping each
key to the deployed resource (an ``Fn::Sub``); the local runner calls it with real
values. Until that module exists, :func:`placeholder_render` stands in: two states that
announce the trigger on the approvals topic and succeed. Every ``${...}`` left in the
rendered text must be a known key, so a typo fails ``cdk synth``, not the deployment.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from rankops.errors import ConfigError

# What the stack substitutes (the pipeline stack's docstring says where each comes from).
RESOURCE_KEYS = (
    "Environment",
    "StateMachineName",
    "ApprovalRequired",
    "FailuresTopicArn",
    "ApprovalsTopicArn",
    "RawBucket",
    "CuratedBucket",
    "FeaturesBucket",
    "ArtifactsBucket",
    "ImageUri",
    "SageMakerJobRoleArn",
    "TrainingInstanceType",
    "ProcessingInstanceType",
    "JobSubnetIds",
    "JobSecurityGroupId",
    "MlflowTrackingServerArn",
    "EmrApplicationId",
    "EmrJobRoleArn",
    "EndpointName",
    "ServingModelRoleArn",
)
LAMBDA_KEY_PREFIX = "LambdaArn_"  # plus the handler name, e.g. LambdaArn_pre_traffic
_PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")

Render = Callable[[Mapping[str, str]], "dict[str, Any] | str"]


def placeholder_render(resources: Mapping[str, str]) -> dict[str, Any]:
    """Stand-in until ``stepfunctions/definition.py`` provides ``render``."""
    return {
        "Comment": f"rankops pipeline placeholder ({resources['StateMachineName']}); "
        "stepfunctions/definition.py replaces it",
        "StartAt": "AnnounceTrigger",
        "States": {
            "AnnounceTrigger": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {
                    "TopicArn": resources["ApprovalsTopicArn"],
                    "Subject": "rankops pipeline started",
                    "Message.$": "States.JsonToString($)",
                },
                "ResultPath": None,
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def pipeline_render() -> tuple[Render, str]:
    """The pipeline's ``render`` and where it came from; the placeholder if it is not there yet."""
    try:
        module = importlib.import_module("stepfunctions.definition")
    except ModuleNotFoundError as err:
        if err.name not in ("stepfunctions.definition", "stepfunctions"):
            raise  # the module exists but one of its imports is missing: that is a bug to see
        return placeholder_render, "infra.constructs.pipeline_definition_source.placeholder_render"
    render = getattr(module, "render", None)
    if not callable(render):
        raise ConfigError("stepfunctions/definition.py must define render(resources) -> dict | str")
    return render, "stepfunctions.definition.render"


def render_definition(resource_keys: list[str], render: Render | None = None) -> str:
    """The ASL text with ``${key}`` placeholders; raises ConfigError on unknown placeholders."""
    render = render or pipeline_render()[0]
    rendered = render({key: "${" + key + "}" for key in resource_keys})
    text = rendered if isinstance(rendered, str) else json.dumps(rendered, indent=2, sort_keys=True)
    json.loads(text)  # must be JSON
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - set(resource_keys))
    if unknown:
        raise ConfigError(f"the pipeline definition uses unknown substitutions {unknown}; known: {resource_keys}")
    return text
