"""``rankops features build|materialize|get``: the feature factory."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rankops.cli.common import Parser, Progress, command, command_group, duration_s, settings_from


def add_window_args(parser: argparse.ArgumentParser) -> None:
    """``--start/--end`` or ``--hours-back``; none of them means a backfill of all data."""
    parser.add_argument("--start", help="first hour of the window (ISO, UTC), e.g. 2026-11-03T00:00")
    parser.add_argument("--end", help="end of the window, exclusive (ISO, UTC); default now (or the data's end)")
    parser.add_argument("--hours-back", type=int, help="the last N complete hours before --end (hourly runs)")


def register(sub: Any) -> None:
    group = command_group(
        sub,
        "features",
        "Compute, publish and look up features.",
        "  rankops features build                # Spark: backfill the offline store from the lake's raw logs\n"
        "  rankops features materialize          # latest values into the online stores\n"
        "  rankops features get item i-1 i-2     # read them back (JSON lines)",
    )
    inner = group.add_subparsers(dest="features_command", metavar="ACTION", parser_class=Parser)
    inner.required = True
    build = command(
        inner,
        "build",
        "Compute, validate and publish the offline feature store with Spark (no window: backfill everything).",
        "rankops features build --hours-back 1      # or: --start 2026-11-03T00:00 --end 2026-11-04T00:00",
    )
    add_window_args(build)
    build.set_defaults(func=run_build)
    mat = command(
        inner,
        "materialize",
        "Publish the latest validated feature values to the online stores (routing in online_store.routing).",
        "rankops features materialize",
    )
    mat.set_defaults(func=run_materialize)
    get = command(
        inner,
        "get",
        "Read features from the online stores (JSON lines); `item` also follows to its seller and category.",
        "rankops features get item i-1 i-2",
    )
    get.add_argument("entity", help="entity name: item, seller or category")
    get.add_argument("keys", nargs="+", help="entity ids, e.g. i-1 i-2")
    get.set_defaults(func=run_get)
    stream = command(
        inner,
        "stream",
        "Run the streaming feature job (Spark Structured Streaming) for a bounded time and report what it wrote.",
        "rankops features stream --for 30s      # feed it with: rankops generate --stream --rate 2000",
    )
    stream.add_argument("--for", dest="seconds", type=duration_s, required=True, help="how long: 30s, 2m, 1h")
    stream.add_argument("--trigger", type=duration_s, default=5.0, help="micro-batch interval (default 5s)")
    stream.set_defaults(func=run_stream)


def window_from(args: argparse.Namespace, lake: Any) -> Any:
    from rankops.features.offline import parse_time, resolve_window

    return resolve_window(
        lake,
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
        hours_back=args.hours_back,
    )


def run_build(args: argparse.Namespace) -> int:
    from rankops.features import offline
    from rankops.lake import Lake
    from rankops.spark_session import get_spark

    settings = settings_from(args)
    lake = Lake.from_settings(settings)
    window = window_from(args, lake)
    progress = Progress()
    kind = "backfill" if window.backfill else "incremental run"
    progress.stage(f"building offline features with Spark: {kind} {window.start:%Y-%m-%d %H:%M} .. {window.end:%H:%M}")
    result = offline.build(get_spark(settings, "rankops-features"), lake, settings, window)
    progress.info(
        f"feature set {settings.features.feature_set} {result.version}: {result.rows} rows in "
        f"{result.partitions} partitions, validation passed (report {result.report_uri})"
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


def run_stream(args: argparse.Namespace) -> int:
    from rankops.features.streaming import StreamConfig, check_source, run_job
    from rankops.lake import Lake

    settings = settings_from(args)
    lake = Lake.from_settings(settings)
    cfg = StreamConfig.from_lake(lake, trigger_s=args.trigger)
    check_source(lake, cfg)
    progress = Progress()
    progress.stage(f"streaming features from {cfg.source} for {args.seconds:g}s")
    report = run_job(settings, lake, cfg, args.seconds)
    progress.info(
        f"{report['values_written']:,} window values written to {', '.join(report['namespaces'])}; events "
        f"accepted {report['events_accepted']:,}, late {report['events_late']:,}, "
        f"quarantined {report['events_quarantined']:,} {report['quarantine_reasons'] or ''}".rstrip()
    )
    print(json.dumps(report, default=str))
    progress.done()
    return 0


def run_get(args: argparse.Namespace) -> int:
    from rankops.errors import RankopsError
    from rankops.features import registry
    from rankops.features.lookup import FeatureLookup

    if args.entity not in registry.stored_entities():
        raise RankopsError(
            f"unknown entity {args.entity!r}; entities with stored features: {', '.join(registry.stored_entities())}"
        )
    settings = settings_from(args)
    lookup = FeatureLookup.from_settings(settings)
    try:
        fetched = lookup.fetch_items(args.keys) if args.entity == "item" else lookup.fetch({args.entity: args.keys})
    finally:
        lookup.close()
    for i, key in enumerate(args.keys):
        # A missing value (NaN) prints as null: NaN is not JSON.
        row = {name: None if math.isnan(v := float(values[i])) else v for name, values in fetched.columns.items()}
        print(json.dumps({"entity": args.entity, "key": key, "found": bool(fetched.found[i]), "features": row}))
    return 0
