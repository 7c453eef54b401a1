"""``rankops serve``: the inference server, in the foreground or the background."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankops.cli.common import command, port_number, settings_from
from rankops.errors import ConfigError


def register(sub: Any) -> None:
    p = command(
        sub,
        "serve",
        "Run the inference server (SageMaker contract: GET /ping, POST /invocations).",
        "rankops serve --port 8080          # foreground; --background to detach, --stop to end it",
    )
    p.add_argument("--host", help="bind address (default: serving.host)")
    p.add_argument(
        "--port",
        type=port_number,
        help="TCP port 1-65535 (default: serving.port); --background moves to a free port if it is taken",
    )
    p.add_argument("--model-dir", help="serve this MLflow model directory instead of the registry's champion")
    p.add_argument("--workers", type=int, help="worker processes (default: serving.workers; one per core is best)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--background", action="store_true", help="start detached and return once /ping answers")
    mode.add_argument("--stop", action="store_true", help="stop the background server of this home")
    mode.add_argument("--status", action="store_true", help="print the background server's state as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rankops import background

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    settings = settings_from(args)
    if args.stop:
        stopped = background.stop(settings.home)
        print("stopped the inference server" if stopped else "no inference server was running for this home")
        return 0
    if args.status:
        print(json.dumps(background.status(settings.home)))
        return 0
    host = args.host or settings.serving.host
    port = settings.serving.port if args.port is None else args.port
    if args.background:
        state = background.start(settings.home, settings.env, host, port)
        print(f"inference server running at {state['url']} (pid {state['pid']}, log {state['log']})")
        return 0
    from rankops.serving.server import run as serve

    serve(settings, host, port, Path(args.model_dir) if args.model_dir else None, args.workers)
    return 0
