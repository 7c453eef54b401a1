"""``rankops train``: train, evaluate and register a ranker from the lake."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import Progress, command, settings_from


def register(sub: Any) -> None:
    p = command(
        sub,
        "train",
        "Train a LightGBM lambdarank ranker on the lake's logs, evaluate it against "
        "random and popularity rankings on the newest requests, and register it in MLflow.",
        "rankops train --alias champion",
    )
    p.add_argument("--alias", default="champion", help="alias to give the new version ('' for none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rankops.lake import Lake
    from rankops.spark_session import get_spark
    from rankops.training.workflow import train_from_lake

    settings = settings_from(args)
    progress = Progress()
    progress.stage("training")
    report = train_from_lake(
        get_spark(settings, "rankops-train"),
        Lake.from_settings(settings),
        settings,
        alias=args.alias or None,
        progress=progress.info,
    )
    progress.done()
    print(json.dumps({"version": report.version, "model": report.model, "baselines": report.baselines}))
    return 0
