"""The seam between the pipeline definition (``stepfunctions/``) and the CDK stack that deploys it.

``stepfunctions.definition.render_text(resources)`` is the state machine with ``${Key}``
placeholders; CDK deploys that text with ``DefinitionSubstitutions`` mapping each key to a
deployed resource, and the local runner substitutes local values into the same text. Every
``${...}`` left in the text must be a known key, so a typo fails ``cdk synth``, not the deployment.
"""

from __future__ import annotations

import re

from rankops.errors import ConfigError
from stepfunctions.definition import LAMBDAS, RESOURCE_KEYS, render_text

LAMBDA_KEY_PREFIX = "LambdaArn_"  # plus the handler name, e.g. LambdaArn_release
_PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")

__all__ = ["LAMBDAS", "LAMBDA_KEY_PREFIX", "RESOURCE_KEYS", "render_definition"]


class _Placeholders(dict[str, str]):
    """``${key}`` for any key the definition asks for (unknown ones are reported after rendering)."""

    def __missing__(self, key: str) -> str:
        return "${" + key + "}"


def render_definition(resource_keys: list[str]) -> str:
    """The ASL text with ``${key}`` placeholders; raises ConfigError on unknown placeholders."""
    text = render_text(_Placeholders())
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - set(resource_keys))
    if unknown:
        raise ConfigError(f"the pipeline definition uses unknown substitutions {unknown}; known: {resource_keys}")
    return text
