"""Shared CLI plumbing: the parser class, global options, settings and progress."""

from __future__ import annotations

import argparse
import signal
from typing import Any, NoReturn

from rankops.config import Settings, load_settings
from rankops.progress import Progress

__all__ = ["Parser", "Progress", "add_common", "command", "command_group", "port_number", "settings_from"]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``rankops: error: ...``) and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def port_number(raw: str) -> int:
    """argparse type of ``--port``: a TCP port 1-65535 (0, "any free port", is not accepted: the
    server's URL must be known before it starts)."""
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {raw!r}: expected a number 1-65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: expected 1-65535")
    return port


def duration_s(raw: str) -> float:
    """argparse type of ``--for``: ``30s``, ``2m``, ``1h`` or plain seconds, more than zero."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = raw.strip().lower()
    scale = units.get(text[-1:], 1)
    try:
        value = float(text[:-1] if text[-1:] in units else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {raw!r}: expected e.g. 30s, 2m or 1h") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid duration {raw!r}: must be more than zero")
    return value


def positive_int(raw: str) -> int:
    """argparse type of counts and rates: a whole number of at least 1."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {raw!r}: expected a whole number >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid number {value}: must be at least 1")
    return value


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every command accepts, before or after the command name."""
    parser.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        help="state folder (lake, MLflow, stores); default $RANKOPS_HOME or ./.rankops",
    )
    parser.add_argument(
        "--env",
        default=argparse.SUPPRESS,
        choices=["local", "dev", "staging", "prod"],
        help="environment whose configuration to use (default local)",
    )
    parser.add_argument("--config", default=argparse.SUPPRESS, help="config file (default: nearest rankops.toml)")


def command(
    sub: Any, name: str, help_text: str, example: str, details: str = "", **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand with the common options and an example in its help (``details``: more
    paragraphs for its own ``--help`` only)."""
    description = f"{help_text}\n\n{details}" if details else help_text
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description, epilog=f"example:\n  {example}", **kwargs
    )
    add_common(parser)
    return parser


def command_group(sub: Any, name: str, help_text: str, examples: str) -> argparse.ArgumentParser:
    """A command with actions (``rankops features build``): common options and examples in its help."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text, epilog=f"examples:\n{examples}"
    )
    add_common(parser)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        env=getattr(args, "env", None), home=getattr(args, "home", None), config_file=getattr(args, "config", None)
    )


def exit_on_sigterm() -> None:
    """Turn SIGTERM (a CI timeout, ``kill``, a container stop) into ``SystemExit(143)`` in long
    commands that start servers: Python's default would end the process at once, orphaning the
    serve processes, moto and redis-server their ``with`` blocks stop on the way out."""

    def _exit(signum: int, _frame: object) -> NoReturn:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
