"""``rankops rehearse``: a dress rehearsal of the deployed AWS system on this machine (docs/rehearsal.md)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rankops.cli.common import command, exit_on_sigterm
from rankops.cli.pipeline import progress_line
from rankops.errors import ConfigError


def register(sub: Any) -> None:
    p = command(
        sub,
        "rehearse",
        "Rehearse the deployed AWS system on this machine before any `cdk deploy`: build the "
        "environment's world from its synthesized templates (moto, a SageMaker endpoint emulator), "
        "run the deployed state machine in AWS mode through scenarios, and check that the endpoint, "
        "the registry and the lineage agree after each. Never touches real AWS.",
        "rankops rehearse --env prod --scenario all",
    )
    p.add_argument("--scenario", default="all", help="a scenario name, or 'all' (default): see docs/rehearsal.md")
    p.add_argument("--cdk-out", metavar="DIR", help="read the synthesized templates here instead of synthesizing")
    p.add_argument(
        "--events",
        type=int,
        default=12_000,
        help="logged searches to stage (default 12000, the size tests/e2e/test_rehearse.py proves: the release "
        "scenarios' challengers are other training seeds, and whether one clears the offline gate depends on the data)",
    )
    p.add_argument("--workdir", metavar="DIR", help="where the rehearsal keeps its files (default: a temp folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rankops.pipeline.local_jobs import HOST_DEFAULTS

    # The rehearsal trains its bootstrap model in this process, beside its moto, serve and job
    # processes on one host: LightGBM's threads should sleep at barriers, as its jobs' do. Set
    # before LightGBM (libgomp) loads; a value in the environment wins.
    for name, value in HOST_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from rankops.rehearse.scenarios import run_scenarios, selected
    from rankops.rehearse.world import ENVS

    env = getattr(args, "env", None) or "dev"
    if env not in ENVS:
        raise ConfigError(f"unknown environment {env!r} for a rehearsal; choose one of {', '.join(ENVS)}")
    names = selected(args.scenario)
    exit_on_sigterm()
    started = time.monotonic()

    def say(text: str) -> None:  # each stage and scenario with the time since the start
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    with tempfile.TemporaryDirectory(prefix="rankops-rehearse-") as scratch:
        workdir = Path(args.workdir) if args.workdir else Path(scratch)
        cdk_out = Path(args.cdk_out) if args.cdk_out else None
        results = run_scenarios(
            env, workdir, names, cdk_out=cdk_out, events=args.events, on_state=progress_line, say=say
        )
    width = max(len(r.name) for r in results)
    print(
        f"\n{'scenario':<{width}}  {'end':<9}  {'seconds':>7}  endpoint serves  registry champion/challenger  "
        "lineage champion  agree"
    )
    for r in results:
        a = r.agreement
        print(
            f"{r.name:<{width}}  {r.record.status:<9}  {r.seconds:>7.0f}  {', '.join(a.served) or '-':<15}  "
            f"{(a.champion_alias or '-') + '/' + (a.challenger_alias or '-'):<28}  {a.lineage_champion or '-':<16}  "
            f"{'yes' if a.agrees else 'NO'}"
        )
    print(f"rehearsal: {len(results)} scenarios in {time.monotonic() - started:.0f} s (staging included)")
    return 0
