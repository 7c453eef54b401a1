"""``rankops demo``: run the whole local loop end to end."""

from __future__ import annotations

import argparse
from typing import Any

from rankops.cli.common import Progress, command, settings_from
from rankops.demo_reset import RESET_FOLDERS


def register(sub: Any) -> None:
    p = command(
        sub,
        "demo",
        "Run the whole local loop end to end on embedded defaults (data, features, the pipeline, the "
        "local endpoint) and print where to look.",
        "rankops --home ./.rankops demo --events 300000",
        details="The demo starts from a clean home: after checking its arguments and the configuration\n"
        "(a bad one deletes nothing), it stops the home's background server and removes\n"
        f"{', '.join(f'{d}/' for d in RESET_FOLDERS)} under --home.\n"
        "Give it its own --home to keep other work.",
    )
    p.add_argument("--events", type=int, help="synthetic events to generate (default: synthetic.events)")
    p.add_argument("--days", type=int, help="days of synthetic traffic (default: synthetic.days)")
    p.add_argument("--seed", type=int, help="random seed (default: synthetic.seed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rankops.demo import demo_log, run_demo, summary_text
    from rankops.progress import stderr_to

    settings = settings_from(args)
    progress = Progress(total=4)
    progress.info(f"Spark, Java and library log lines: {demo_log(settings)}")
    with stderr_to(demo_log(settings)):
        result = run_demo(settings, args.events, args.days, args.seed, progress=progress)
    print(summary_text(settings, result, progress.elapsed()))
    return 0
