"""``rankops ingest``: your own impression/click log into the lake's raw layer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rankops.cli.common import Progress, command, settings_from


def register(sub: Any) -> None:
    parser = command(
        sub,
        "ingest",
        "Validate a CSV/Parquet impression log against the raw schema and publish it to the lake "
        "(bad rows are quarantined with a reason, missing optional columns reported).",
        "rankops ingest --source logs/ --mapping docs/ingest_mapping.example.yaml --items listings.csv",
    )
    parser.add_argument("--source", required=True, help="a .csv/.parquet file or a folder of them")
    parser.add_argument("--mapping", required=True, help="YAML: raw column -> your column (see docs/schema.md)")
    parser.add_argument("--items", default=None, help="item side table (overrides items.source of the mapping)")
    parser.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    from rankops.ingest import ingest, load_mapping
    from rankops.lake import Lake

    settings = settings_from(args)
    progress = Progress()
    progress.stage(f"ingesting {args.source}")
    report = ingest(
        Lake.from_settings(settings),
        Path(args.source),
        load_mapping(Path(args.mapping)),
        Path(args.items) if args.items else None,
        progress=progress.info,
    )
    progress.done()
    print(json.dumps(report.as_dict(), sort_keys=True))
    return 0
