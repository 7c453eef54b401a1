"""``rankops train``: the lake-to-registry workflow, or a LightGBM run on your own files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rankops.cli.common import Progress, command, settings_from
from rankops.errors import ConfigError, LakeError

BYO_FLAGS = ("train", "train_query", "valid", "valid_query")


def register(sub: Any) -> None:
    p = command(
        sub,
        "train",
        "Train a LightGBM lambdarank ranker. Default (lake mode): process the lake's logs, train "
        "and register the ranker and its fallback, evaluate them against the champion and the "
        "baselines on the newest requests, apply the gate and move aliases. With --train/--valid "
        "(file mode): train on your own LightGBM text files and print a JSON line of metrics.",
        "rankops train\n  rankops train --train rank.train --train-query rank.train.query "
        "--valid rank.test --valid-query rank.test.query --params '{\"num_leaves\": 63}'",
    )
    p.add_argument(
        "--alias",
        choices=["champion", "challenger", ""],
        default=None,
        help="lake mode: alias a challenger that passes the gate receives ('' for none; default gate.on_pass)",
    )
    p.add_argument("--hyperparameters", metavar="JSON", help="lake mode: training hyperparameters (JSON object)")
    files = p.add_argument_group("file mode (LightGBM's svmlight/LETOR text with query-size files)")
    files.add_argument("--train", metavar="FILE", help="training rows")
    files.add_argument("--train-query", metavar="FILE", help="query sizes of the training rows, one per line")
    files.add_argument("--valid", metavar="FILE", help="validation rows (early stopping and the metrics)")
    files.add_argument("--valid-query", metavar="FILE", help="query sizes of the validation rows")
    files.add_argument(
        "--params",
        metavar="JSON",
        help="LightGBM parameters over rankops' training defaults (training.params, rounds, early stopping)",
    )
    files.add_argument(
        "--plain-lightgbm",
        action="store_true",
        help="start from LightGBM's own defaults instead of rankops' (100 rounds, no early stopping)",
    )
    files.add_argument("--model-out", metavar="FILE", help="save the trained booster (LightGBM text model)")
    p.set_defaults(func=run)


def _json_object(raw: str | None, flag: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{flag}: not valid JSON ({err.msg} at position {err.pos})") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{flag}: expected a JSON object like '{{\"num_leaves\": 63}}'")
    return value


def run(args: argparse.Namespace) -> int:
    given = [f for f in BYO_FLAGS if getattr(args, f)]
    if given:
        return run_files(args, given)
    if args.params or args.model_out or args.plain_lightgbm:
        raise ConfigError(
            "--params, --plain-lightgbm and --model-out belong to file mode: give --train, --train-query, "
            "--valid, --valid-query"
        )
    return run_lake(args)


def run_files(args: argparse.Namespace, given: list[str]) -> int:
    from rankops.training.byo import ByoFiles, added_defaults, train_files

    missing = [f"--{f.replace('_', '-')}" for f in BYO_FLAGS if f not in given]
    if missing:
        raise ConfigError(f"file mode needs {', '.join(missing)} as well")
    settings = settings_from(args)
    files = ByoFiles(Path(args.train), Path(args.train_query), Path(args.valid), Path(args.valid_query))
    params = _json_object(args.params, "--params")
    model_out = Path(args.model_out) if args.model_out else None
    out = train_files(settings, files, params, model_out, plain=args.plain_lightgbm)
    added = {} if args.plain_lightgbm else added_defaults(settings, params)
    if added:  # after training, so that a bad input stays a one-line error
        listed = ", ".join(f"{k}={v}" for k, v in added.items())
        print(
            f"rankops: note: trained with rankops' defaults besides --params: {listed} "
            "(--plain-lightgbm for LightGBM's own)",
            file=sys.stderr,
        )
    print(json.dumps(out, sort_keys=True))
    return 0


def run_lake(args: argparse.Namespace) -> int:
    from rankops.lake import Lake
    from rankops.spark_session import get_spark
    from rankops.training.workflow import train_from_lake

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a CLI process, not job code
    settings = settings_from(args)
    hyperparameters = _json_object(args.hyperparameters, "--hyperparameters")
    lake = Lake.from_settings(settings)
    if not lake.partitions("raw", "events"):  # before Spark starts: nothing to train on
        raise LakeError(f"{lake.uri('raw', 'events')} has no committed events; run `rankops generate` or `ingest`")
    progress = Progress()
    progress.stage("training")
    report = train_from_lake(
        get_spark(settings, "rankops-train"),
        lake,
        settings,
        alias=args.alias,
        progress=progress.info,
        hyperparameters=hyperparameters,
    )
    progress.done()
    summary = {
        "version": report.version,
        "fallback_version": report.fallback_version,
        "reused": report.reused,
        "decision": report.gate["decision"],
        "reasons": report.gate["reasons"],
        "aliases": report.aliases,
        "dataset_hash": report.dataset_hash,
        "model": report.model,
        "fallback": report.fallback,
        "baselines": report.baselines,
    }
    if report.position_debias:
        summary["position_debias"] = report.position_debias
    print(json.dumps(summary, sort_keys=True))
    return 0
