"""``rankops ope``: off-policy estimates of a ranking policy's clicks from logged rankings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rankops.cli.common import command
from rankops.errors import ConfigError


def register(sub: Any) -> None:
    p = command(
        sub,
        "ope",
        "Estimate a ranking policy's expected clicks from logged rankings with their propensities "
        "(IPS, self-normalised IPS, doubly robust; bootstrap intervals, effective sample size, "
        "support warnings). See docs/ope.md.",
        "rankops ope --log open_bandit_dataset/random/all/all.csv --policy uniform",
    )
    p.add_argument("--log", metavar="FILE.csv", help="an external log in the Open Bandit Dataset CSV layout")
    p.add_argument(
        "--policy",
        required=True,
        help="uniform (every item equally likely at every position; with --log), or champion, "
        "challenger or a model VERSION (lake logs; needs the feedback log of issue 13)",
    )
    p.add_argument("--since", help="lake mode: first day of logs to use, YYYY-MM-DD")
    p.add_argument("--n-items", type=int, help="catalogue size for --policy uniform (default: items in the log)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the intervals (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the reward model's folds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 10:
        raise ConfigError(f"--bootstrap must be at least 10, got {args.bootstrap}")
    if args.log is None:
        raise ConfigError(
            f"--policy {args.policy} on the lake's logs needs the feedback log (issue 13), which this "
            "build does not have yet; evaluate an external log with --log FILE.csv --policy uniform"
        )
    if args.policy != "uniform":
        raise ConfigError(f"--log supports --policy uniform only, got {args.policy!r}")
    if args.n_items is not None and args.n_items < 1:
        raise ConfigError(f"--n-items must be a positive number, got {args.n_items}")
    from rankops.ope.obd import evaluate_uniform, read_obd_csv

    data = read_obd_csv(Path(args.log))
    report = evaluate_uniform(data, n_items=args.n_items, n_boot=args.bootstrap, seed=args.seed)
    warnings = {w for e in report["estimates"] for w in e["warnings"]}  # type: ignore[attr-defined]
    for warning in sorted(warnings):  # the same weights under every estimator: say each once
        print(f"rankops: warning: {warning}", file=sys.stderr)
    print(json.dumps(report, sort_keys=True))
    return 0
