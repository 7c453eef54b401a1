"""The network: a VPC with private (isolated) subnets only, VPC endpoints, and security groups.

No NAT gateway and no internet gateway: nothing in the VPC can reach the internet or be
reached from it. AWS services are reached through gateway endpoints (S3, DynamoDB, free)
and interface endpoints (SageMaker, MLflow, CloudWatch, ECR, STS, KMS, Secrets Manager). Because the subnets have
no other route, "HTTPS out to anywhere" on a security group can only reach those
endpoints; every other rule names its peer security group and port.

Security groups (all without default egress):
  serving   SageMaker endpoint ENIs: HTTPS out, Redis out.
  batch     EMR Serverless workers and SageMaker jobs: HTTPS out, Redis out, all TCP within
            the group (Spark driver <-> executors).
  redis     ElastiCache: the Redis port in from serving and batch only.
  endpoints interface endpoints: HTTPS in from serving and batch only.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import EnvConfig
from infra.nag import cfn_lint_ignore
from rankops.errors import ConfigError

HTTPS = ec2.Port.tcp(443)


class Network(Construct):
    """Exposes ``vpc``, ``subnets`` (the private subnet selection), ``subnet_ids`` and the security groups."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig) -> None:
        super().__init__(scope, construct_id)
        aws = config.aws
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(aws.network.cidr),
            availability_zones=aws.zones(),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        for subnet in self.vpc.isolated_subnets:
            # The AZs come from configuration on purpose (aws.availability_zones / aws.max_azs).
            cfn_lint_ignore(subnet, "W3010")
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.subnet_ids: list[str] = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=config.log_retention, removal_policy=config.removal_policy)
            ),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.serving_sg = self._group("Serving", "SageMaker endpoint of the ranker")
        self.batch_sg = self._group("Batch", "EMR Serverless feature jobs and SageMaker jobs")
        self.redis_sg = self._group("Redis", "ElastiCache Redis online store")
        self.endpoints_sg = self._group("Endpoints", "Interface VPC endpoints")
        port = ec2.Port.tcp(aws.redis.port)
        for client in (self.serving_sg, self.batch_sg):
            client.add_egress_rule(ec2.Peer.any_ipv4(), HTTPS, "AWS APIs via VPC endpoints (no internet route)")
            client.add_egress_rule(self.redis_sg, port, "Redis online store")
            self.redis_sg.add_ingress_rule(client, port, "Redis clients")
            self.endpoints_sg.add_ingress_rule(client, HTTPS, "AWS API calls from the workloads")
        self.batch_sg.add_ingress_rule(self.batch_sg, ec2.Port.all_tcp(), "Spark driver and executors")
        self.batch_sg.add_egress_rule(self.batch_sg, ec2.Port.all_tcp(), "Spark driver and executors")
        for name in aws.network.interface_endpoints:
            service = getattr(ec2.InterfaceVpcEndpointAwsService, name, None)
            if not isinstance(service, ec2.InterfaceVpcEndpointAwsService):
                raise ConfigError(
                    f"aws.network.interface_endpoints: {name!r} is not an ec2.InterfaceVpcEndpointAwsService name"
                )
            self.vpc.add_interface_endpoint(
                name.title().replace("_", ""),
                service=service,
                subnets=self.subnets,
                security_groups=[self.endpoints_sg],
                open=False,
                private_dns_enabled=True,
            )

    def _group(self, name: str, description: str) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(self, f"{name}Sg", vpc=self.vpc, description=description, allow_all_outbound=False)
