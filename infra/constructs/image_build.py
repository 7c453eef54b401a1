"""The rankops images, built in AWS: ECR repositories and the CodeBuild project that fills them.

Two images from one source tree: ``docker/Dockerfile`` (processing, training and the
inference ``serve`` contract) and ``docker/emr.Dockerfile`` (EMR Serverless workers).
Nothing is built on a developer machine or during ``cdk synth``/``deploy``: the repository
source is uploaded as an S3 asset at deploy time and ``aws codebuild start-build`` builds
it (README: bootstrap). S3 asset rather than a CodeStar connection: the built source is
exactly the commit that was deployed, and nothing needs an OAuth handshake with a Git
host first. Tags are immutable, so one tag always means one image.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.config import REPO_ROOT, EnvConfig
from infra.nag import (
    KMS_GRANT_ACTIONS,
    NO_RESOURCE_TYPE,
    OWN_LOG_STREAMS,
    S3_GRANT_ACTIONS,
    acknowledge,
    acknowledge_wildcards,
    lake_objects,
)
from rankops.training.jobs import code_version

# The image build context: the package, its job entrypoints and the files pip needs.
SOURCE_INCLUDES = (
    "rankops",
    "sagemaker_jobs",
    "emr_jobs",
    "stepfunctions",
    "docker",
    "setup.py",
    "README.md",
    "constraints.txt",
    "rankops.toml",
)


def source_excludes() -> list[str]:
    includes = [p for name in SOURCE_INCLUDES for p in (f"!{name}", f"!{name}/**")]
    return ["*", ".*", *includes, "**/__pycache__", "**/*.pyc"]


class ImageBuild(Construct):
    """Exposes ``repository`` (rankops), ``emr_repository``, ``project`` and ``image_uri``."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, artifacts: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.repository = self._repository("Repository", config.prefix)
        self.emr_repository = self._repository("EmrRepository", f"{config.prefix}-emr")
        applications = f"arn:{Aws.PARTITION}:emr-serverless:{Aws.REGION}:{Aws.ACCOUNT_ID}:/applications/*"
        self.emr_repository.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EmrServerlessPull",  # this account's EMR Serverless applications may pull the image
                principals=[iam.ServicePrincipal("emr-serverless.amazonaws.com")],
                actions=["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer"],
                conditions={"StringLike": {"aws:SourceArn": applications}},
            )
        )
        self.image_uri = f"{self.repository.repository_uri}:{config.image_tag}"
        source = s3_assets.Asset(self, "Source", path=str(REPO_ROOT), exclude=source_excludes())
        key = kms.Key(
            self,
            "BuildKey",
            alias=f"alias/{config.prefix}-image-build",
            enable_key_rotation=True,
            description=f"{config.prefix} image build artifacts and logs",
            removal_policy=config.removal_policy,
        )
        log_group = logs.LogGroup(
            self, "BuildLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        self.project = codebuild.Project(
            self,
            "Project",
            project_name=config.name_of("image"),
            description="Build and push the rankops images (docker/buildspec.yml); start it with start-build",
            source=codebuild.Source.s3(bucket=source.bucket, path=source.s3_object_key),
            build_spec=codebuild.BuildSpec.from_source_filename("docker/buildspec.yml"),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType[config.aws.codebuild_compute],
                privileged=True,
            ),
            environment_variables={
                name: codebuild.BuildEnvironmentVariable(value=value)
                for name, value in {
                    "REPOSITORY_URI": self.repository.repository_uri,
                    "EMR_REPOSITORY_URI": self.emr_repository.repository_uri,
                    "IMAGE_TAG": config.image_tag,
                    "EMR_RELEASE_LABEL": config.aws.emr.release_label,
                    "ARTIFACTS_BUCKET": artifacts.bucket_name,
                    # the commit synthesized (S3 sources have no CODEBUILD_RESOLVED_SOURCE_VERSION):
                    # the image's RANKOPS_CODE_VERSION, the models' code_version lineage tag
                    "CODE_VERSION": code_version({}),
                }.items()
            },
            encryption_key=key,
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)),
            timeout=Duration.minutes(60),
        )
        self.repository.grant_pull_push(self.project)
        self.emr_repository.grant_pull_push(self.project)
        artifacts.grant_put(self.project, "emr/*")
        acknowledge(
            self.project,
            "AwsSolutions-CB3",
            "Privileged mode is how CodeBuild runs the Docker daemon that builds the images; the build runs "
            "only docker/buildspec.yml from the deployed source asset.",
        )
        acknowledge_wildcards(
            self.project,
            "Wildcards come from CDK grants: the project's own log streams and report groups, the source asset "
            "and the artifacts bucket's emr/ prefix; ecr:GetAuthorizationToken has no resource type.",
            S3_GRANT_ACTIONS,
            KMS_GRANT_ACTIONS,
            OWN_LOG_STREAMS,
            r"Resource::arn:<AWS::Partition>:codebuild:[^:]+:<AWS::AccountId>:report-group/<ImageProject[^>]*>-\*",
            r"Resource::arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-[^/]+/\*",
            lake_objects("artifacts", "emr/"),
            NO_RESOURCE_TYPE,
        )

    def _repository(self, construct_id: str, name: str) -> ecr.Repository:
        return ecr.Repository(
            self,
            construct_id,
            repository_name=name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            lifecycle_rules=[
                # Only untagged layers expire: every tag is a release (aws.image_tag) that models, jobs or
                # the pinned bootstrap model (aws.endpoint.bootstrap_image_tag) may still run, so no
                # count- or age-based rule may ever select a tagged image.
                ecr.LifecycleRule(
                    description="drop untagged layers after a week",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(7),
                    rule_priority=1,
                ),
            ],
        )
