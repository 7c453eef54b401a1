"""``rankops models list|archive``: the registered versions, their aliases, metrics and state."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import Parser, command, command_group, settings_from


def register(sub: Any) -> None:
    group = command_group(
        sub,
        "models",
        "List registered model versions; archive stale ones.",
        "  rankops models list                   # versions, aliases, holdout NDCG, gate decision\n"
        "  rankops models archive                # tag old versions without an alias as archived",
    )
    inner = group.add_subparsers(dest="models_command", metavar="ACTION", parser_class=Parser)
    inner.required = True
    listing = command(
        inner,
        "list",
        "Versions of the ranker, its fallback and the rule baseline: aliases, creation time, "
        "holdout NDCG and coverage, gate decision, archived flag (newest first).",
        "rankops models list --json",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per version instead of a table")
    listing.add_argument("--name", action="append", help="only this registered model (repeatable)")
    listing.set_defaults(func=run_list)
    archive = command(
        inner,
        "archive",
        "Tag versions older than mlflow.archive_after_days that hold no alias as archived "
        "(the evaluation job does this after every run).",
        "rankops models archive",
    )
    archive.set_defaults(func=run_archive)


def _rows(settings: Any, names: list[str] | None) -> list[dict[str, Any]]:
    from rankops import registry

    k = settings.evaluation.ndcg_k
    return [
        {
            "name": v.name,
            "version": v.version,
            "aliases": list(v.aliases),
            "created": v.created.isoformat(timespec="seconds"),
            f"ndcg@{k}": v.tags.get(f"ndcg_at_{k}"),
            f"coverage@{k}": v.tags.get(f"coverage_at_{k}"),
            "gate": v.tags.get("gate_decision"),
            "archived": v.archived,
            "dataset_hash": v.tags.get("dataset_hash", "")[:12] or None,
            "run_id": v.run_id,
        }
        for v in registry.list_versions(settings, names)
    ]


def table(rows: list[dict[str, Any]], k: int) -> str:
    header = ("MODEL", "VERSION", "ALIASES", "CREATED (UTC)", f"NDCG@{k}", f"COVERAGE@{k}", "GATE", "ARCHIVED")
    body = [
        (
            r["name"],
            r["version"],
            ",".join(r["aliases"]) or "-",
            r["created"].replace("+00:00", ""),
            r[f"ndcg@{k}"] or "-",
            r[f"coverage@{k}"] or "-",
            r["gate"] or "-",
            "yes" if r["archived"] else "no",
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body, strict=False)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (header, *body)
    )


def run_list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    rows = _rows(settings, args.name)
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    elif rows:
        print(table(rows, settings.evaluation.ndcg_k))
    else:
        print("no registered models yet; run `rankops train`")
    return 0


def run_archive(args: argparse.Namespace) -> int:
    from rankops import registry

    settings = settings_from(args)
    archived = registry.archive_stale(settings)
    print(json.dumps({"archived": [f"{a.name}/{a.version}" for a in archived]}))
    return 0
