"""``rankops pipeline run|history|render``: the Step Functions pipeline, locally."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rankops.cli.common import Parser, command, command_group, settings_from
from rankops.config import load_settings
from rankops.errors import RankopsError


def register(sub: Any) -> None:
    group = command_group(
        sub,
        "pipeline",
        "Run the retraining pipeline locally and see its history.",
        "  rankops pipeline run                  # the deployed definition, run on this machine\n"
        "  rankops pipeline run --set gate.ndcg_floor=0.4 --from Evaluation --until Gate\n"
        "  rankops pipeline history              # the last executions; --show NAME for one\n"
        "  rankops pipeline render               # the ASL JSON CDK deploys",
    )
    inner = group.add_subparsers(dest="pipeline_command", metavar="ACTION", parser_class=Parser)
    inner.required = True
    run = command(
        inner,
        "run",
        "Execute the deployed state machine definition on this machine (moto's Step "
        "Functions interpreter, local jobs, the local inference server as the endpoint).",
        "rankops pipeline run --set gate.ndcg_floor=0.4     # --from Evaluation --until Gate",
    )
    run.add_argument("--snapshot", default="latest", help="data snapshot, ISO time (default: latest published)")
    run.add_argument("--reason", default="manual", help="why this run (schedule, drift, manual, ...)")
    run.add_argument("--refresh-features", action="store_true", help="run the feature job first")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="configuration override for every job, e.g. gate.ndcg_floor=0.4 (repeatable)",
    )
    run.add_argument("--input", help="extra execution input as JSON (merged over the options above)")
    run.add_argument(
        "--from",
        dest="start",
        metavar="STATE",
        help="start at this state, with the input it received in the last execution that reached it",
    )
    run.add_argument("--until", metavar="STATE", help="stop after this state")
    run.add_argument(
        "--approve",
        choices=("ask", "yes", "no"),
        default="ask",
        help="answer to approval requests (pipeline.approval_required): ask on a terminal (default; "
        "elsewhere: reject), yes, or no",
    )
    run.add_argument("--quiet", action="store_true", help="no per-state progress lines")
    run.set_defaults(func=run_pipeline)
    history = command(
        inner,
        "history",
        "List the last local executions, or show one state by state.",
        "rankops pipeline history --show 20261124T230000Z-1a2b3c4d",
    )
    history.add_argument("--last", type=int, default=10, help="how many executions to list")
    history.add_argument("--show", metavar="EXECUTION", help="one execution's states with durations")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(func=show_history)
    render = command(
        inner,
        "render",
        "Print the state machine definition (ASL JSON) as CDK deploys it.",
        "rankops pipeline render --local > definition.json",
    )
    render.add_argument("--local", action="store_true", help="with this machine's values substituted")
    render.set_defaults(func=render_definition)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["gate.ndcg_floor=0.4"]`` -> ``{"gate": {"ndcg_floor": 0.4}}`` (values parsed as JSON when they are)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or "." not in key:
            raise RankopsError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. gate.ndcg_floor=0.4")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = tree
        *path, leaf = key.split(".")
        for depth, part in enumerate(path, 1):
            node = node.setdefault(part, {})
            if not isinstance(node, dict) or not part:
                raise RankopsError(f"--set {item!r}: {'.'.join(path[:depth])!r} is not a section")
        if not leaf or isinstance(node.get(leaf), dict):
            raise RankopsError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. gate.ndcg_floor=0.4")
        node[leaf] = value
    return tree


def progress_line(record: Any) -> None:
    if record.status == "running":
        print(f"  > {record.name} ({record.type})", flush=True)
    else:
        mark = "ok" if record.status == "succeeded" else "FAILED"
        print(f"  {mark:>6} {record.name:<24} {record.seconds:7.1f}s", flush=True)


def run_pipeline(args: argparse.Namespace) -> int:
    from rankops.pipeline.execution_input import check_input, checked_overrides
    from rankops.pipeline.local import run_local

    settings = settings_from(args)
    execution_input: dict[str, Any] = {"reason": args.reason, "overrides": parse_overrides(args.overrides)}
    if not args.start:  # --from resumes the recorded input; only the reason and overrides change
        execution_input.update(snapshot=args.snapshot, refresh_features=bool(args.refresh_features))
    if args.input:
        try:
            extra = json.loads(args.input)
        except json.JSONDecodeError as err:
            raise RankopsError(f"--input is not valid JSON: {err}") from None
        if not isinstance(extra, dict):
            raise RankopsError(f'--input must be a JSON object like \'{{"reason": "drift"}}\', got {args.input!r}')
        execution_input.update(extra)
    overrides = execution_input.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise RankopsError(f"--input: 'overrides' must be a JSON object, got {overrides!r}")
    # Every job applies the overrides over its settings: check them here, before an execution starts.
    check_input(execution_input)
    load_settings(
        env=getattr(args, "env", None),
        home=getattr(args, "home", None),
        config_file=getattr(args, "config", None),
        overrides=overrides,
        overrides_label="--set/--input overrides",
    )
    checked_overrides(overrides, settings)  # and only what a run may change, never loosening the gate
    print(f"pipeline ({settings.env}): running the deployed definition locally", flush=True)
    record = run_local(
        settings,
        execution_input,
        start=args.start,
        until=args.until,
        on_state=None if args.quiet else progress_line,
        approver=approver(args.approve),
    )
    print(summary(record))
    return 0 if record.status == "SUCCEEDED" else 2


def approver(answer: str) -> Callable[[dict[str, Any]], bool] | None:
    """``--approve``: a fixed answer, or a question on the terminal (None: nobody to ask)."""
    if answer != "ask":
        return lambda request: answer == "yes"
    if not sys.stdin.isatty():
        return None

    def ask(request: dict[str, Any]) -> bool:
        print("approval requested:\n" + json.dumps(request, indent=2, default=str), flush=True)
        return input("approve this release? [y/N] ").strip().lower() in ("y", "yes")

    return ask


def summary(record: Any) -> str:
    output = record.output or {}
    gate = (output.get("gate") or {}).get("result", {}) if isinstance(output, dict) else {}
    lines = [f"execution {record.name}: {record.status} in {record.ended - record.started:.0f}s"]
    if gate.get("already_champion"):
        lines.append(f"version {gate['version']} is already the champion (same data and code): nothing released")
    elif gate:
        lines.append(f"gate: {gate['decision']} version {gate['version']} - " + "; ".join(gate["reasons"]))
    for request in getattr(record, "approvals", []):
        answer = "approved" if request["approved"] else "rejected"
        lines.append(f"approval: version {request.get('version')} {answer}")
    if record.error:
        lines.append(f"error: {record.error}: {str(record.cause)[:500]}")
    lines.append("history: rankops pipeline history --show " + record.name)
    return "\n".join(lines)


def show_history(args: argparse.Namespace) -> int:
    from rankops.pipeline.runner import load_history

    settings = settings_from(args)
    records = load_history(settings.home, last=1000 if args.show else args.last)
    if args.show:
        records = [r for r in records if r["name"] == args.show]
        if not records:
            raise RankopsError(f"no saved execution {args.show!r}; `rankops pipeline history` lists them")
    if args.json:
        print(json.dumps(records if not args.show else records[0], indent=2, default=str))
        return 0
    if not records:
        print("no pipeline executions yet: `rankops pipeline run`")
        return 0
    if args.show:
        record = records[0]
        print(f"{record['name']}  {record['status']}  input {json.dumps(record['input'])}")
        for state in record["states"]:
            seconds = (state["ended"] or state["started"]) - state["started"]
            error = f"  {state['error']}" if state.get("error") else ""
            print(f"  {state['status']:<10} {state['name']:<24} {seconds:7.1f}s{error}")
        return 0
    for record in records:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record["started"]))
        took = record["ended"] - record["started"]
        last = record["states"][-1]["name"] if record["states"] else "-"
        print(f"{record['name']}  {started}Z  {record['status']:<9} {took:6.0f}s  last state {last}")
    return 0


def render_definition(args: argparse.Namespace) -> int:
    from rankops.pipeline.local import definition_template, local_resources
    from stepfunctions.definition import substitute

    text = definition_template()
    if args.local:
        text = substitute(text, local_resources(settings_from(args)))
    print(text)
    return 0
