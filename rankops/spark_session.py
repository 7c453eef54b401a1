"""One place that builds Spark sessions, so every job and test gets the same settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

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


# -- S3 without s3a ---------------------------------------------------------------------------
# EMR reads s3:// natively; a local Spark needs the hadoop-aws jar for s3a://, which this project
# cannot fetch (no Maven). When that jar is missing, lake files on S3 go through pyarrow's S3
# client instead: committed files are copied to a local mirror and read from there (same files,
# same partition discovery, so the same types), and writes go to a local folder that is then
# uploaded to the staging URI the lake commits from. The domain code calls the two functions
# below and never knows which path was taken.
_S3A: dict[int, bool] = {}


def s3a_available(spark: SparkSession) -> bool:
    """Whether this Spark can read ``s3a://`` (the hadoop-aws classes are on its classpath)."""
    key = id(spark)
    if key not in _S3A:
        try:
            spark.sparkContext._jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")  # type: ignore[union-attr]
            _S3A[key] = True
        except Exception:  # py4j raises its own error for a missing class
            _S3A[key] = False
    return _S3A[key]


def _through_pyarrow(spark: SparkSession, uri: str) -> bool:
    return uri.startswith("s3://") and not os.environ.get("EMR_RELEASE_LABEL") and not s3a_available(spark)


def _mirror_root() -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / f"rankops-s3-mirror-{os.getpid()}"


def readable_uris(spark: SparkSession, base_uri: str, file_uris: list[str]) -> tuple[str, list[str]]:
    """(base path, files) Spark can read for lake files under ``base_uri``; S3 files are mirrored
    locally first when s3a is unavailable (committed files never change, so a mirror stays valid)."""
    if not _through_pyarrow(spark, base_uri):
        return spark_uri(base_uri), [spark_uri(f) for f in file_uris]
    import pyarrow.fs as pafs

    from rankops.lake import Lake

    fs, _ = Lake.filesystem(base_uri)
    root = _mirror_root()
    local = []
    for uri in file_uris:
        target = root / uri.removeprefix("s3://")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            pafs.copy_files(
                uri.removeprefix("s3://"),
                str(partial),
                source_filesystem=fs,
                destination_filesystem=pafs.LocalFileSystem(),
            )
            partial.rename(target)
        local.append(spark_uri(str(target)))
    return spark_uri(str(root / base_uri.removeprefix("s3://"))), local


def write_parquet(frame: DataFrame, uri: str, partition_by: str) -> None:
    """``frame`` as hive-partitioned Parquet at ``uri`` (a staging location the lake commits from)."""
    spark = frame.sparkSession
    if not _through_pyarrow(spark, uri):
        frame.write.mode("overwrite").partitionBy(partition_by).parquet(spark_uri(uri))
        return
    import shutil
    import tempfile

    import pyarrow.fs as pafs

    from rankops.lake import Lake

    local = Path(tempfile.mkdtemp(prefix="rankops-s3-stage-"))
    try:
        frame.write.mode("overwrite").partitionBy(partition_by).parquet(spark_uri(str(local / "out")))
        fs, path = Lake.filesystem(uri)
        for file in (local / "out").rglob("*.parquet"):
            relative = file.relative_to(local / "out").as_posix()
            pafs.copy_files(
                str(file),
                f"{path.rstrip('/')}/{relative}",
                source_filesystem=pafs.LocalFileSystem(),
                destination_filesystem=fs,
            )
    finally:
        shutil.rmtree(local, ignore_errors=True)
