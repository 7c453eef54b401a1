"""An environment's AWS world on this machine, built from its synthesized CDK templates.

:func:`open_world` synthesizes the environment (or reads a ``cdk.out``), starts moto in server
mode in this process, and creates every resource the rehearsal exercises through the services'
own APIs, with the properties the templates give them (:mod:`rankops.rehearse.resources`,
names and references from :mod:`rankops.rehearse.intrinsics`). Two stand-ins replace what moto
has not got: a private ``redis-server`` (with the template's AUTH token from Secrets Manager) for
ElastiCache, and a sqlite MLflow store, artifacts in the moto artifacts bucket, for SageMaker's
managed MLflow. The SageMaker model, endpoint config and endpoint are kept resolved
(:attr:`World.sagemaker`) for the endpoint emulator, which creates them through its API.

While the world is open, this process's AWS settings point at it (``AWS_ENDPOINT_URL``, test
credentials, no shared config files), so boto3, pyarrow and child processes reach only moto.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankops.errors import RankopsError
from rankops.rehearse import resources
from rankops.rehearse.intrinsics import Resolver
from rankops.rehearse.servers import moto_server, redis_server

ENVS = ("dev", "staging", "prod")
REPO = Path(__file__).resolve().parents[2]
FAKE_CREDENTIALS = ("testing", "testing")  # the only credentials a rehearsal runs with
SAGEMAKER_TYPES = ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint")


@dataclass
class World:
    """What the rehearsal built: where it lives and what each resource is called."""

    env: str
    prefix: str
    region: str
    endpoint_url: str
    redis_url: str
    mlflow_uri: str
    resolver: Resolver
    lambda_env: dict[str, dict[str, str]] = field(default_factory=dict)  # function name -> environment
    state_machines: dict[str, str] = field(default_factory=dict)  # name -> ARN
    sagemaker: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # type -> resolved properties

    def client(self, service: str) -> Any:
        return _clients(self.endpoint_url, self.region)(service)

    def function_env(self, suffix: str) -> dict[str, str]:
        """The environment of the Lambda function ``<prefix>-<suffix>`` (e.g. ``release``)."""
        name = f"{self.prefix}-{suffix}"
        if name not in self.lambda_env:
            raise RankopsError(f"no Lambda function {name!r} in the {self.env} templates")
        return self.lambda_env[name]

    def definition(self, name: str | None = None) -> str:
        """The deployed state machine's definition, as Step Functions stores it."""
        arn = self.state_machines[name or f"{self.prefix}-pipeline"]
        return str(self.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"])

    def stack(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"


def load_templates(cdk_out: Path, prefix: str) -> dict[str, dict[str, Any]]:
    """The templates of one environment's stacks (``<prefix>-*.template.json``) in ``cdk_out``."""
    files = sorted(cdk_out.glob(f"{prefix}-*.template.json"))
    if not files:
        raise RankopsError(f"no {prefix}-*.template.json in {cdk_out}: synthesize the environment first")
    return {f.name.removesuffix(".template.json"): json.loads(f.read_text()) for f in files}


def synthesize(env: str, outdir: Path) -> Path:
    """``cdk synth -c env=<env>`` into ``outdir``: the project's CDK app run as the CDK CLI runs it
    (``python app.py`` with ``CDK_OUTDIR`` and ``CDK_CONTEXT_JSON``; rankops never imports infra)."""
    import subprocess
    import sys

    context = {**json.loads((REPO / "cdk.json").read_text())["context"], "env": env}
    environ = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    done = subprocess.run(  # noqa: S603 - the project's own CDK app
        [sys.executable, str(REPO / "app.py")], cwd=REPO, env=environ, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RankopsError(f"cdk synth of {env} failed: {last}")
    return outdir


def env_settings(env: str) -> tuple[str, str]:
    """(stack name prefix, region) of a deployable environment, from rankops.toml as infra reads it."""
    from rankops.config import load_settings

    if env not in ENVS:
        raise RankopsError(f"unknown environment {env!r}; choose one of {', '.join(ENVS)}")
    settings = load_settings(env=env, environ={}, config_file=REPO / "rankops.toml")
    return f"{settings.project}-{env}", settings.aws.region


MLFLOW_S3_ENDPOINT = "MLFLOW_S3_ENDPOINT_URL"


@contextmanager
def aws_settings(endpoint_url: str, region: str, workdir: Path) -> Iterator[None]:
    """Point this process (and its children) at the local world only, then restore the settings.
    MLflow's S3 artifact client is cached by its endpoint setting, not by ``AWS_ENDPOINT_URL``: it
    gets the world's URL too, so a second world in one process never reuses a client of the first."""
    keep = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k == MLFLOW_S3_ENDPOINT}
    for key in keep:
        del os.environ[key]
    os.environ.update(
        {
            MLFLOW_S3_ENDPOINT: endpoint_url,
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS[0],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS[1],
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("AWS_") or k == MLFLOW_S3_ENDPOINT]:
            del os.environ[key]
        os.environ.update(keep)


SERVICES = (  # every service a rehearsal talks to
    "s3",
    "sqs",
    "dynamodb",
    "sns",
    "kms",
    "secretsmanager",
    "iam",
    "logs",
    "ecr",
    "cloudwatch",
    "lambda",
    "stepfunctions",
    "events",
    "sagemaker",
    "sagemaker-runtime",
)


def check_local_endpoints() -> None:
    """Refuse to go on unless every AWS endpoint this process would use is on 127.0.0.1: the
    endpoint variables first (before any client exists), the credentials in effect (the fake
    ones), then each service's effective endpoint as botocore resolves it (creating a client makes
    no request)."""
    import boto3

    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        raise RankopsError("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is set: a rehearsal would reach real AWS; refusing")
    for key, value in os.environ.items():
        if key.startswith("AWS_ENDPOINT_URL") and not value.startswith("http://127.0.0.1:"):
            raise RankopsError(f"{key}={value} is not a local endpoint: a rehearsal never touches real AWS; refusing")
    if "AWS_ENDPOINT_URL" not in os.environ:
        raise RankopsError("AWS_ENDPOINT_URL is not set: a rehearsal never touches real AWS; refusing")
    credentials = boto3.Session().get_credentials()
    if credentials is None or (credentials.access_key, credentials.secret_key) != FAKE_CREDENTIALS:
        raise RankopsError("the AWS credentials in effect are not the rehearsal's fake ones; refusing")
    for service in SERVICES:
        url = boto3.client(service).meta.endpoint_url
        if not str(url).startswith("http://127.0.0.1:"):
            raise RankopsError(f"the {service} endpoint resolves to {url}, not 127.0.0.1; refusing")


def _clients(endpoint_url: str, region: str) -> resources.Clients:
    import boto3

    return lambda service: boto3.client(service, region_name=region, endpoint_url=endpoint_url)


def _start_redis(r: Resolver, workdir: Path, stack: ExitStack) -> str:
    """ElastiCache's stand-in: a redis-server with the replication group's AUTH token."""
    groups = r.resources("AWS::ElastiCache::ReplicationGroup")
    if len(groups) > 1:
        raise RankopsError(f"the rehearsal stands in for one Redis replication group, the templates have {len(groups)}")
    token = r.resolve(groups[0][0], groups[0][2]["Properties"].get("AuthToken")) if groups else None
    url = stack.enter_context(redis_server(workdir / "redis", token, _server_parameters(r, groups)))
    host, _, port = url.removeprefix("redis://").partition("/")[0].partition(":")
    for name, logical_id, _ in groups:
        r.assign(name, logical_id, "PrimaryEndPoint.Address", host)
        r.assign(name, logical_id, "PrimaryEndPoint.Port", port)
    return url


def _server_parameters(r: Resolver, groups: list[tuple[str, str, dict[str, Any]]]) -> dict[str, str]:
    """The replication group's parameter group's ``Properties`` (redis.conf names and values)."""
    if not groups:
        return {}
    stack, _, group = groups[0]
    named = group["Properties"].get("CacheParameterGroupName")
    if named is None:
        return {}
    wanted = named.get("Ref") if isinstance(named, dict) else None
    found = [res for s, lid, res in r.resources("AWS::ElastiCache::ParameterGroup") if (s, lid) == (stack, wanted)]
    if not found:
        raise RankopsError(f"the replication group's parameter group {named!r} is not a resource of {stack}")
    return {str(k): str(r.resolve(stack, v)) for k, v in found[0]["Properties"].get("Properties", {}).items()}


def _rewriter(standins: Mapping[str, str]) -> resources.Rewrite:
    """Replace each stand-in's AWS value (the MLflow server ARN, a ``rediss://`` URL) in a value."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        if isinstance(value, str):
            for old, new in standins.items():
                value = value.replace(old, new)
        return value

    return rewrite


def build_world(
    env: str, templates: Mapping[str, dict[str, Any]], endpoint_url: str, workdir: Path, stack: ExitStack
) -> World:
    """Create the world of ``templates`` on the moto server at ``endpoint_url``."""
    prefix, region = env_settings(env)
    world_client = _clients(endpoint_url, region)
    secrets = world_client("secretsmanager")
    r = Resolver(
        templates, region, secret_value=lambda arn: str(secrets.get_secret_value(SecretId=arn)["SecretString"])
    )
    resources.create_kms_keys(r, world_client)
    resources.create_secrets(r, world_client)
    redis_url = _start_redis(r, workdir, stack)
    mlflow_uri = f"sqlite:///{workdir / 'mlflow' / 'mlflow.db'}"
    (workdir / "mlflow").mkdir(parents=True, exist_ok=True)
    standins = {"rediss://127.0.0.1:": "redis://127.0.0.1:"}
    for name, logical_id, _ in r.resources("AWS::SageMaker::MlflowTrackingServer"):
        standins[str(r.get_att(name, logical_id, "TrackingServerArn"))] = mlflow_uri
    rewrite = _rewriter(standins)
    for create in (
        resources.create_queues,
        resources.create_roles,
        resources.create_buckets,
        resources.create_tables,
        resources.create_topics,
        resources.create_logs,
        resources.create_repositories,
        resources.create_alarms,
    ):
        create(r, world_client)
    world = World(env, prefix, region, endpoint_url, redis_url, mlflow_uri, r)
    world.lambda_env = resources.create_functions(r, world_client, rewrite)
    world.state_machines = resources.create_state_machines(r, world_client, rewrite)
    resources.create_rules(r, world_client)
    world.sagemaker = {
        type_: [rewrite(r.resolve(s, res["Properties"])) for s, _, res in r.resources(type_)]
        for type_ in SAGEMAKER_TYPES
    }
    return world


@contextmanager
def open_world(env: str, workdir: Path, cdk_out: Path | None = None) -> Iterator[World]:
    """Synthesize ``env`` (or read ``cdk_out``), start moto and Redis, build the world; all of it
    is torn down (and this process's AWS settings restored) on exit."""
    prefix, region = env_settings(env)
    workdir.mkdir(parents=True, exist_ok=True)
    templates = load_templates(cdk_out or synthesize(env, workdir / "cdk.out"), prefix)
    with ExitStack() as stack:
        url = stack.enter_context(moto_server())
        stack.enter_context(aws_settings(url, region, workdir))
        check_local_endpoints()
        yield build_world(env, templates, url, workdir, stack)
