"""Glue Data Catalog entries for the lake's raw datasets, so Athena can query them.

Partitions are found by *partition projection* (``dt`` a date, ``hour`` 00-23):
no crawler, no ``MSCK REPAIR``, nothing to keep in sync. Projection only reads the
``dt=/hour=`` folders, so a run's ``_staging/`` files are never visible; like every
reader outside rankops, Athena does not check ``_SUCCESS`` manifests, so it can see
a partition while it is being rewritten (docs/lake.md). The feature store is
versioned (``features/<set>/<version>/...``) and is read through rankops, not Glue.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import EnvConfig

# Column types follow docs/schema.md.
EVENTS_COLUMNS = (
    ("request_id", "string"),
    ("ts", "timestamp"),
    ("user_id", "string"),
    ("query_category", "string"),
    ("device", "string"),
    ("item_id", "string"),
    ("position", "smallint"),
    ("clicked", "boolean"),
    ("contacted", "boolean"),
    ("revenue", "double"),
)
ITEMS_COLUMNS = (
    ("item_id", "string"),
    ("seller_id", "string"),
    ("category", "string"),
    ("price", "double"),
    ("image_quality", "double"),
    ("created_at", "timestamp"),
)
FIRST_DAY = "2020-01-01"


class LakeCatalog(Construct):
    """One Glue database per environment with the raw ``events`` and ``items`` tables."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, raw: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.database_name = config.prefix.replace("-", "_")
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description=f"{config.prefix} data lake (raw zone)"
            ),
        )
        self.tables = {
            "events": self._table("events", raw, EVENTS_COLUMNS, hourly=True),
            "items": self._table("items", raw, ITEMS_COLUMNS, hourly=False),
        }

    def _table(
        self, name: str, bucket: s3.IBucket, columns: tuple[tuple[str, str], ...], *, hourly: bool
    ) -> glue.CfnTable:
        location = f"s3://{bucket.bucket_name}/{name}/"
        keys = [glue.CfnTable.ColumnProperty(name="dt", type="string")]
        template = location + "dt=${dt}"
        parameters = {
            "classification": "parquet",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": f"{FIRST_DAY},NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
        }
        if hourly:
            keys.append(glue.CfnTable.ColumnProperty(name="hour", type="string"))
            template += "/hour=${hour}"
            parameters |= {
                "projection.hour.type": "integer",
                "projection.hour.range": "0,23",
                "projection.hour.digits": "2",
            }
        parameters["storage.location.template"] = template + "/"
        table = glue.CfnTable(
            self,
            f"{name.capitalize()}Table",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                table_type="EXTERNAL_TABLE",
                parameters=parameters,
                partition_keys=keys,
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(name=c, type=t) for c, t in columns],
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        table.node.add_dependency(self.database)
        return table
