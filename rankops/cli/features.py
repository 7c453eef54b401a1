"""``rankops features build|materialize|get``: the feature factory."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import Parser, Progress, add_common, command, settings_from


def register(sub: Any) -> None:
    group = sub.add_parser(
        "features", help="Compute, publish and look up features.", description="Compute, publish and look up features."
    )
    add_common(group)
    inner = group.add_subparsers(dest="features_command", metavar="ACTION", parser_class=Parser)
    inner.required = True
    build = command(
        inner,
        "build",
        "Compute the offline feature store from the raw zone with Spark.",
        "rankops features build --home ./.rankops",
    )
    build.set_defaults(func=run_build)
    mat = command(
        inner, "materialize", "Publish the latest feature values to the online stores.", "rankops features materialize"
    )
    mat.set_defaults(func=run_materialize)
    get = command(
        inner,
        "get",
        "Read features of entities from the online store (JSON on stdout).",
        "rankops features get item i-1 i-2",
    )
    get.add_argument("entity", help="entity name, e.g. item")
    get.add_argument("keys", nargs="+", help="entity ids, e.g. i-1 i-2")
    get.set_defaults(func=run_get)


def run_build(args: argparse.Namespace) -> int:
    from rankops.features import offline
    from rankops.lake import Lake
    from rankops.spark_session import get_spark

    settings = settings_from(args)
    progress = Progress()
    progress.stage("building offline features with Spark")
    result = offline.build(get_spark(settings, "rankops-features"), Lake.from_settings(settings), settings)
    progress.info(
        f"feature set {settings.features.feature_set} {result.version}: {result.rows} rows in "
        f"{result.partitions} partitions"
    )
    progress.done()
    return 0


def run_materialize(args: argparse.Namespace) -> int:
    from rankops.features.materialize import materialize
    from rankops.lake import Lake

    settings = settings_from(args)
    progress = Progress()
    progress.stage("materializing the latest feature values")
    materialize(Lake.from_settings(settings), settings, progress=progress.info)
    progress.done()
    return 0


def run_get(args: argparse.Namespace) -> int:
    from rankops.errors import RankopsError
    from rankops.features import registry
    from rankops.features.lookup import FeatureLookup
    from rankops.features.online import open_store

    if args.entity not in registry.stored_entities():
        raise RankopsError(
            f"unknown entity {args.entity!r}; entities with stored features: {', '.join(registry.stored_entities())}"
        )
    settings = settings_from(args)
    lookup = FeatureLookup({args.entity: open_store(settings, args.entity)})
    try:
        fetched = lookup.fetch({args.entity: args.keys})
    finally:
        lookup.close()
    for i, key in enumerate(args.keys):
        row = {name: float(values[i]) for name, values in fetched.columns.items()}
        print(json.dumps({"entity": args.entity, "key": key, "found": bool(fetched.found[i]), "features": row}))
    return 0
