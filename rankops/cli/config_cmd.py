"""``rankops config``: show the effective configuration of an environment."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import command, settings_from


def register(sub: Any) -> None:
    p = command(
        sub,
        "config",
        "Validate and print the effective configuration of an environment (JSON; secrets shown as ***).",
        "rankops --env prod config",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rankops.redaction import redact_settings

    print(json.dumps(redact_settings(settings_from(args).model_dump(mode="json")), indent=2))
    return 0
