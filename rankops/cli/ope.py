"""``rankops ope``: off-policy estimates of a ranking policy's clicks from logged rankings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rankops.cli.common import command, settings_from
from rankops.errors import ConfigError


def register(sub: Any) -> None:
    p = command(
        sub,
        "ope",
        "Estimate a ranking policy's expected clicks from logged rankings with their propensities "
        "(IPS, self-normalised IPS, doubly robust; bootstrap intervals, effective sample size, "
        "support warnings). See docs/ope.md.",
        "rankops ope --policy challenger --since 2026-11-20\n"
        "  rankops ope --log open_bandit_dataset/random/all/all.csv --policy uniform",
    )
    p.add_argument("--log", metavar="FILE.csv", help="an external log in the Open Bandit Dataset CSV layout")
    p.add_argument(
        "--policy",
        help="uniform (every item equally likely at every position; with --log), or champion, "
        "challenger or a model VERSION (re-scored on the feedback log)",
    )
    p.add_argument("--since", help="lake mode: first day of logs to use, YYYY-MM-DD")
    p.add_argument("--until", help="lake mode: day after the last day of logs to use, YYYY-MM-DD")
    p.add_argument(
        "--logging",
        default="",
        help="lake mode: only answers of these logging policies, comma-separated "
        "(deterministic, explore, uniform; default all)",
    )
    p.add_argument(
        "--guard",
        action="store_true",
        help="lake mode: the feedback-loop guard report (how widely each release's top positions spread over "
        "the candidates; champion and challenger on the uniform slice) instead of one policy",
    )
    p.add_argument("--releases", type=int, default=5, help="--guard: the last releases to compare (default 5)")
    p.add_argument("--top", type=int, default=10, help="--guard: the first positions that count as shown (default 10)")
    p.add_argument("--n-items", type=int, help="catalogue size for --policy uniform (default: items in the log)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the intervals (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the reward model's folds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 10:
        raise ConfigError(f"--bootstrap must be at least 10, got {args.bootstrap}")
    if args.guard:
        return _guard(args)
    if args.policy is None:
        raise ConfigError("give --policy (champion, challenger, a VERSION, or uniform with --log), or --guard")
    if args.log is None:
        return _lake(args)
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


def _day(raw: str | None, flag: str) -> Any:
    from datetime import UTC, datetime

    if raw is None:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{flag} must be a day like 2026-11-20, got {raw!r}") from None


def _lake(args: argparse.Namespace) -> int:
    """A registered model version re-scored on the feedback log: clicks and contacts per request."""
    from rankops.feedback.record import POLICIES
    from rankops.lake import Lake
    from rankops.ope import feedback_eval

    settings = settings_from(args)
    policies = [p.strip() for p in args.logging.split(",") if p.strip()]
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise ConfigError(f"--logging: unknown policy {unknown[0]!r}; expected {', '.join(POLICIES)}")
    version = feedback_eval.resolve_version(settings, args.policy)
    slates = feedback_eval.load(
        Lake.from_settings(settings), _day(args.since, "--since"), _day(args.until, "--until"), policies
    )
    report = feedback_eval.evaluate_version(settings, slates, version, n_boot=args.bootstrap, seed=args.seed)
    report["policy"] = args.policy
    warnings = {w for o in feedback_eval.OUTCOMES for e in report[o]["estimates"] for w in e["warnings"]}
    for warning in sorted(warnings):
        print(f"rankops: warning: {warning}", file=sys.stderr)
    print(json.dumps(report, sort_keys=True))
    return 0


def _guard(args: argparse.Namespace) -> int:
    """The feedback-loop guard report (rankops/ope/guard.py)."""
    from rankops.lake import Lake
    from rankops.ope import guard

    if args.log is not None or args.policy is not None:
        raise ConfigError("--guard reads the lake's feedback log: drop --log and --policy")
    if args.releases < 2 or args.top < 1:
        raise ConfigError(f"--releases must be at least 2 and --top at least 1, got {args.releases} and {args.top}")
    settings = settings_from(args)
    since = _day(args.since, "--since")
    report = guard.report(settings, Lake.from_settings(settings), since, args.top, args.releases, args.bootstrap)
    print(json.dumps(report, sort_keys=True))
    return 0
