# syntax=docker/dockerfile:1
# EMR Serverless worker image for the feature job (emr_jobs/build_features.py).
# EMR provides Spark (and PySpark); this adds Python 3.11 and rankops' core dependencies.
# Built in AWS by CodeBuild (docker/buildspec.yml), never locally.
# Base image by digest (docker/pins.env, passed by docker/buildspec.yml): ``latest`` moves.
ARG EMR_RELEASE_LABEL=emr-spark-8.0.0
ARG EMR_IMAGE_DIGEST
FROM public.ecr.aws/emr-serverless/spark/${EMR_RELEASE_LABEL}@${EMR_IMAGE_DIGEST}

USER root
RUN dnf install -y python3.11 python3.11-pip && dnf clean all

WORKDIR /opt/rankops
COPY setup.py README.md constraints.txt rankops.toml ./
COPY rankops/ rankops/
COPY emr_jobs/ emr_jobs/
# Core dependencies only: pyspark is EMR's own (the [spark] extra would shadow it).
RUN python3.11 -m pip install --no-cache-dir -c constraints.txt .

ENV RANKOPS_CONFIG=/opt/rankops/rankops.toml
# EMR Serverless runs jobs as hadoop; never as root.
USER hadoop:hadoop
