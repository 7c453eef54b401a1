"""``rankops simulate``: days of synthetic users against the real server, the batch jobs per window."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rankops.cli.common import command, exit_on_sigterm, settings_from


def register(sub: Any) -> None:
    p = command(
        sub,
        "simulate",
        "Simulate days of the marketplace's users against the real inference server: answers logged, clicks "
        "drawn from the generator's truth (position bias included), a campaign from day 1 shifting searches to "
        "one category, the drift job and the retrain trigger (cooldown, single flight) per window, a started retrain "
        "through the local pipeline (gate, off-policy gate, shadow, CTR-judged canary) while users keep arriving, "
        "and a challenger trained on shuffled labels that must be stopped; prints a "
        "day-by-day table computed from the feedback log and writes simulate.json and timeline.png. "
        "Run on a home prepared by `rankops demo`.",
        "rankops --home ./.rankops simulate --days 7 --seed 5",
    )
    p.add_argument("--days", type=int, default=7, help="simulated days (1-31, default 7)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulated users (default 0)")
    p.add_argument("--requests-per-day", type=int, default=2000, help="searches per simulated day (default 2000)")
    p.add_argument("--drift-every-h", type=int, default=12, help="hours between batch-job runs (divides 24)")
    p.add_argument("--campaign-category", help="category the campaign pushes (default: the least searched one)")
    p.add_argument("--campaign-share", type=float, default=0.5, help="share of searches the campaign takes")
    p.add_argument(
        "--bad-challenger-day",
        type=int,
        default=4,
        help="day at whose end the shuffled-label challenger enters (default 4; -1: never)",
    )
    p.add_argument(
        "--canary-mde",
        type=float,
        default=0.1,
        help="minimum detectable CTR effect of the canary test, absolute (default 0.1)",
    )
    p.add_argument("--out", help="folder for simulate.json and timeline.png (default RANKOPS_HOME/reports/simulate)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from rankops.simulate import report
    from rankops.simulate.run import Sizes, dumps, simulate, to_json

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stderr: the per-day progress lines
    settings = settings_from(args)
    exit_on_sigterm()
    bad = None if args.bad_challenger_day == -1 else args.bad_challenger_day
    sizes = Sizes(args.requests_per_day, args.drift_every_h, campaign_share=args.campaign_share, bad_day=bad,
                  canary_mde=args.canary_mde)  # fmt: skip
    days = simulate(settings, args.days, args.seed, sizes, args.campaign_category,
                    progress=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    out = Path(args.out) if args.out else settings.home / "reports" / "simulate"
    out.mkdir(parents=True, exist_ok=True)
    (out / "simulate.json").write_text(dumps(days))
    report.plot(to_json(days), out / "timeline.png")
    print(report.table(to_json(days), sizes.k))
    print(f"report: {out / 'simulate.json'}  timeline: {out / 'timeline.png'}")
    return 0
