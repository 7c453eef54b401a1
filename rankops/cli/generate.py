"""``rankops generate``: write a synthetic marketplace's raw logs into the lake."""

from __future__ import annotations

import argparse
from typing import Any

from rankops.cli.common import Progress, command, duration_s, positive_int, settings_from


def register(sub: Any) -> None:
    p = command(
        sub,
        "generate",
        "Write synthetic raw event logs (Parquet, dt=/hour= partitions) into the lake.",
        "rankops generate --events 1000000 --days 7 --seed 42     # --replace to overwrite earlier raw data",
    )
    p.add_argument("--events", type=int, help="number of impression events (default from config: synthetic.events)")
    p.add_argument("--days", type=int, help="days of traffic (default: synthetic.days)")
    p.add_argument("--seed", type=int, help="random seed; the same seed gives the same data (default: synthetic.seed)")
    p.add_argument("--start", help="first day, YYYY-MM-DD (default: synthetic.start)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="the lake already holds raw events/items: replace them with the new data (without it, "
        "generate refuses rather than mix two datasets)",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="instead: write live impression events into the stream source (<raw>/stream/events), one file a second",
    )
    p.add_argument("--rate", type=positive_int, default=1000, help="with --stream: events per second (default 1000)")
    p.add_argument(
        "--for", dest="seconds", type=duration_s, help="with --stream: stop after 30s, 2m, ... (default: never)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.stream:
        return run_stream(args)
    from rankops.lake import Lake
    from rankops.synthetic import MarketplaceSpec, ensure_raw_empty, generate, parse_start, write_marketplace

    settings = settings_from(args)
    cfg = settings.synthetic
    spec = MarketplaceSpec(
        events=args.events if args.events is not None else cfg.events,
        days=args.days if args.days is not None else cfg.days,
        seed=args.seed if args.seed is not None else cfg.seed,
        start=parse_start(args.start if args.start is not None else cfg.start),
    )
    lake = Lake.from_settings(settings)
    if not args.replace:
        ensure_raw_empty(lake)  # before the (possibly long) generation; write_marketplace checks again
    progress = Progress()
    progress.stage(f"generating {spec.events:,} events over {spec.days} days (seed {spec.seed})")
    market = generate(spec, progress.info)
    summary = write_marketplace(lake, market, progress.info, replace=args.replace)
    progress.info(
        f"{summary['events']:,} events, {summary['requests']:,} searches, {summary['items']:,} items "
        f"-> {lake.uri('raw')}"
    )
    progress.done()
    return 0


def run_stream(args: argparse.Namespace) -> int:
    from rankops.features.streaming import StreamConfig
    from rankops.lake import Lake
    from rankops.stream_events import StreamSpec, feed

    settings = settings_from(args)
    lake = Lake.from_settings(settings)
    source = StreamConfig.from_lake(lake).source
    seed = args.seed if args.seed is not None else settings.synthetic.seed
    progress = Progress()
    progress.stage(f"streaming {args.rate:,} events/s into {source} (Ctrl-C stops)")
    written = feed(lake, source, args.rate, args.seconds or float("inf"), StreamSpec(seed=seed))
    progress.info(f"{written:,} events written")
    progress.done()
    return 0
