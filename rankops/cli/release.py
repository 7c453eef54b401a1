"""``rankops release``: shadow, sticky canary, blue/green promotion and rollback, locally."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import Parser, add_common, settings_from

EXAMPLES = """examples:
  rankops release shadow --version 2   # challenger scores a copy of live traffic, off the request path
  rankops release status               # shadow comparison (rank correlation, KL), canary checks, versions
  rankops release canary               # next step of release.canary_steps (10% -> 50% -> 100%), after checks
  rankops release promote              # blue/green: challenger -> champion, old champion kept as previous
  rankops release rollback             # drop the shadow/canary, or restore the previous champion at once"""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "release",
        help="Release a challenger safely: shadow, sticky canary, promote (blue/green), rollback.",
        description="Release a challenger safely. Each step checks the evidence from the running server "
        "(unless --force), then updates the MLflow aliases and the release state the server follows.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(p)
    steps = p.add_subparsers(dest="step", metavar="STEP", parser_class=Parser)
    steps.required = True

    def step(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = steps.add_parser(
            name, help=help_text, description=help_text, epilog=f"example:\n  {example}"
        )
        add_common(q)
        q.add_argument("--url", help="the server to read evidence from (default: this home's background server)")
        q.set_defaults(func=run)
        return q

    q = step("shadow", "Shadow a challenger version behind the champion.", "rankops release shadow --version 2")
    q.add_argument("--version", help="model version (default: the challenger alias, else the newest non-champion)")
    q = step("canary", "Route a sticky share of users to the challenger.", "rankops release canary --share 0.1")
    q.add_argument("--share", type=float, help="share of users in (0, 1] (default: the next configured step)")
    q.add_argument("--force", action="store_true", help="skip the shadow / canary checks")
    q = step("promote", "Blue/green switch: the challenger becomes champion.", "rankops release promote")
    q.add_argument("--force", action="store_true", help="skip the shadow / canary checks")
    step("rollback", "Drop the shadow/canary, or restore the previous champion.", "rankops release rollback")
    step("status", "Print versions, mode, shadow comparison and canary checks as JSON.", "rankops release status")


def _describe(result: Any) -> str:
    state = result.state
    serving = f"champion {state.champion}"
    if state.mode == "shadow":
        serving += f", challenger {state.challenger} in shadow"
    elif state.mode == "canary":
        serving += f", challenger {state.challenger} for {state.canary_share:.0%} of users"
    if state.previous:
        serving += f", previous {state.previous} kept loaded"
    lines = [f"release: {serving}"]
    if result.decision is not None:
        lines.append(f"checks passed: {'; '.join(result.decision.reasons)}")
    if result.removed:
        lines.append(f"version {result.removed} taken out of service")
    if result.switched_after_s is not None:
        lines.append(f"the running server switched in {result.switched_after_s * 1000:.0f} ms")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rankops.release import local

    settings = settings_from(args)
    if args.step == "status":
        print(json.dumps(local.status(settings, args.url), indent=2, default=str))
        return 0
    if args.step == "shadow":
        result = local.shadow(settings, args.version, args.url)
    elif args.step == "canary":
        result = local.canary(settings, args.share, args.force, args.url)
    elif args.step == "promote":
        result = local.promote(settings, args.force, args.url)
    else:
        result = local.rollback(settings, args.url)
    print(_describe(result))
    return 0
