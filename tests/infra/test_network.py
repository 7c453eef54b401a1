"""The VPC: private subnets only, VPC endpoints for every AWS API the workloads call, tight groups."""

from __future__ import annotations

import pytest

from tests.infra.conftest import ENVS

INTERFACE_SERVICES = (
    "sagemaker.api",
    "sagemaker.runtime",
    "experiments",  # aws.sagemaker.<region>.experiments: managed MLflow
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "sts",
    "kms",
    "secretsmanager",
)


def service_name(endpoint: dict) -> str:
    """The service part of ``com.amazonaws.<region>.<service>`` (region is an intrinsic here)."""
    name = endpoint["Properties"]["ServiceName"]
    if isinstance(name, str):
        return name.split(".", 3)[-1]  # com.amazonaws.<region>.<service>
    parts = name["Fn::Join"][1]  # ["com.amazonaws.", {"Ref": "AWS::Region"}, ".<service>"]
    return str(parts[-1]).removeprefix(".")


@pytest.mark.parametrize("env", ENVS)
def test_private_isolated_subnets_no_internet_path(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    assert not synth.resources("network", "AWS::EC2::NatGateway")
    assert not synth.resources("network", "AWS::EC2::InternetGateway")
    subnets = synth.resources("network", "AWS::EC2::Subnet")
    assert len(subnets) == synth.config.aws.max_azs == (3 if env == "prod" else 2)
    assert all(not s["Properties"]["MapPublicIpOnLaunch"] for s in subnets.values())
    assert {s["Properties"]["AvailabilityZone"] for s in subnets.values()} == set(synth.config.aws.zones())
    routes = synth.resources("network", "AWS::EC2::Route")
    assert not routes, "isolated subnets have no default route"
    (flow_log,) = synth.resources("network", "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"


@pytest.mark.parametrize("env", ENVS)
def test_vpc_endpoints_cover_the_aws_apis_in_use(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    endpoints = synthesized[env].resources("network", "AWS::EC2::VPCEndpoint").values()
    gateway = {service_name(e) for e in endpoints if e["Properties"].get("VpcEndpointType") == "Gateway"}
    interface = {service_name(e) for e in endpoints if e["Properties"].get("VpcEndpointType") == "Interface"}
    assert gateway == {"s3", "dynamodb"}
    assert set(INTERFACE_SERVICES) <= interface
    for endpoint in endpoints:
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            assert endpoint["Properties"]["PrivateDnsEnabled"] is True


def test_security_groups_allow_only_what_is_needed(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    groups = synth.resources("network", "AWS::EC2::SecurityGroup")
    ingress = synth.resources("network", "AWS::EC2::SecurityGroupIngress")
    for group in groups.values():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") != "0.0.0.0/0"
        egress = group["Properties"].get("SecurityGroupEgress", [])
        # no "allow all" egress: every egress rule names a port (443, Redis) or is CDK's placeholder
        assert all(r.get("IpProtocol") != "-1" for r in egress)
    assert all("CidrIp" not in rule["Properties"] for rule in ingress.values()), "ingress always names a group"
    redis_port = synth.config.aws.redis.port
    redis_rules = [r["Properties"] for r in ingress.values() if r["Properties"].get("FromPort") == redis_port]
    assert len(redis_rules) == 2  # from the serving and batch groups, nothing else
    assert {r["ToPort"] for r in redis_rules} == {redis_port} and redis_port != 6379
    https_rules = [r["Properties"] for r in ingress.values() if r["Properties"].get("FromPort") == 443]
    assert len(https_rules) == 2  # endpoints reachable from serving and batch only
