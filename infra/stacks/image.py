"""Deployable unit: ECR repositories and the CodeBuild project that builds the rankops images."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.image_build import ImageBuild


class ImageStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvConfig, artifacts: s3.IBucket, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.build = ImageBuild(self, "Image", config=config, artifacts=artifacts)
        CfnOutput(
            self, "ImageUri", value=self.build.image_uri, description="the rankops image jobs and the endpoint run"
        )
        CfnOutput(
            self,
            "BuildProject",
            value=self.build.project.project_name,
            description="aws codebuild start-build --project-name <this>",
        )
