"""After every scenario three sources must say the same: what the endpoint serves, what the
registry's aliases say, and what the lineage records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rankops.config import Settings


@dataclass(frozen=True)
class Agreement:
    served: tuple[str, ...]  # model versions the endpoint answered with
    champion_alias: str | None
    challenger_alias: str | None
    lineage_champion: str | None  # newest version whose last release event is "released"
    served_model_data: str = ""  # the live champion variant's model.tar.gz
    degraded: str = ""  # the first reason an answer was degraded, if any was

    @property
    def agrees(self) -> bool:
        return self.served == (self.champion_alias,) and self.champion_alias == self.lineage_champion

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("endpoint serves", ", ".join(self.served) or "-"),
            ("registry champion", self.champion_alias or "-"),
            ("registry challenger", self.challenger_alias or "-"),
            ("lineage champion", self.lineage_champion or "-"),
            ("served model data", self.served_model_data or "-"),
            ("a degraded answer", self.degraded or "-"),
            ("agree", "yes" if self.agrees else "NO"),
        ]


def served_versions(
    endpoint: str, request: dict[str, Any], n: int = 20, tries: int = 200
) -> tuple[tuple[str, ...], str]:
    """The model versions ``n`` undegraded answers of the endpoint named (through boto3), and the
    first degradation reason seen. A degraded answer (rule baseline, e.g. a feature lookup over its
    time budget on a loaded machine) names no model version: it is counted, not taken as one; at
    most ``tries`` invocations."""
    import boto3

    runtime = boto3.client("sagemaker-runtime")
    seen: set[str] = set()
    answered, degraded = 0, ""
    for i in range(tries):
        body = json.dumps({**request, "user_id": f"rehearsal-{i}"})
        answer = json.loads(
            runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json")["Body"].read()
        )
        if answer.get("model_version") is None:
            degraded = degraded or str(answer.get("fallback") or "degraded")
            continue
        seen.add(str(answer["model_version"]))
        answered += 1
        if answered >= n:
            break
    return tuple(sorted(seen)), degraded


def lineage_champion(settings: Settings, s3: Any) -> str | None:
    """The newest version whose lineage says it was released and not rejected afterwards."""
    from rankops import lineage
    from rankops.lake import Lake

    artifacts = Lake.from_settings(settings).zone_uri("artifacts")
    bucket, _, root = artifacts.removeprefix("s3://").partition("/")
    prefix = f"{root.rstrip('/')}/lineage/{settings.mlflow.model_name}/".lstrip("/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    versions = sorted((k.rsplit("/v", 1)[1].removesuffix(".json") for k in keys), key=int)
    champion = None
    for version in versions:
        record = lineage.read_record(artifacts, settings.mlflow.model_name, version, s3)
        last = [e["type"] for e in record.events if e["type"] in ("released", "rejected")]
        if last and last[-1] == "released":
            champion = version
    return champion


def served_model_data(endpoint: str) -> str:
    """The model data of the live config's ``champion`` variant (DescribeEndpoint, through boto3)."""
    import boto3

    sm = boto3.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    )
    model = next(v["ModelName"] for v in config["ProductionVariants"] if v["VariantName"] == "champion")
    return str(sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"])


def check(settings: Settings, endpoint: str, request: dict[str, Any], s3: Any) -> Agreement:
    from rankops import registry

    aliases = registry.aliases(settings)
    served, degraded = served_versions(endpoint, request)
    return Agreement(
        served,
        aliases.get(registry.CHAMPION),
        aliases.get(registry.CHALLENGER),
        lineage_champion(settings, s3),
        served_model_data(endpoint),
        degraded,
    )
