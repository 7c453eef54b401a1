"""One place that builds Spark sessions, so every job and test gets the same settings."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from rankops.config import Settings


def get_spark(settings: Settings, app_name: str = "rankops") -> SparkSession:
    """Create (or reuse) the session. Local runs bind to 127.0.0.1 and keep the UI off;
    on EMR the cluster's own configuration applies and ``spark.master`` is left alone."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    builder = SparkSession.builder.appName(app_name)
    if settings.spark.master.startswith("local"):
        builder = (
            builder.master(settings.spark.master)
            .config("spark.driver.memory", settings.spark.driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
        )
    builder = (
        builder.config("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
    )
    for key, value in settings.spark.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_uri(uri: str) -> str:
    """Lake URI as Spark wants it: ``file://`` for local paths, ``s3a://`` off EMR."""
    if uri.startswith("s3://") and not os.environ.get("EMR_RELEASE_LABEL"):
        return "s3a://" + uri[len("s3://") :]
    if "://" not in uri:
        return "file://" + uri
    return uri
