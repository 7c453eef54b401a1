"""The CDK side of configuration: which environment to synthesize, and its settings.

The environment comes from ``-c env=dev|staging|prod`` (cdk.json's default is
``dev``); its values come from the same ``rankops.toml`` the platform reads, so
infra and runtime can never disagree about, say, the region.
"""

from __future__ import annotations

from dataclasses import dataclass

from rankops.config import Settings, load_settings
from rankops.errors import ConfigError

CLOUD_ENVIRONMENTS = ("dev", "staging", "prod")


@dataclass(frozen=True)
class EnvConfig:
    """One environment as the stacks see it."""

    name: str
    settings: Settings

    @property
    def prefix(self) -> str:
        return f"{self.settings.project}-{self.name}"

    @property
    def tags(self) -> dict[str, str]:
        aws = self.settings.aws
        return {"project": self.settings.project, "env": self.name, "owner": aws.owner, "cost-centre": aws.cost_centre}


def env_config(name: str | None) -> EnvConfig:
    if name not in CLOUD_ENVIRONMENTS:
        raise ConfigError(f"cdk context env={name!r} is not deployable; use one of {', '.join(CLOUD_ENVIRONMENTS)}")
    return EnvConfig(name, load_settings(env=name, environ={}))
