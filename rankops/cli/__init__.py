"""``rankops``: one command line for the local platform.

Each command group lives in its own module with a ``register(subparsers)``
function; this module only assembles them and turns ``RankopsError`` into one
line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rankops import __version__
from rankops.cli import config_cmd, demo, features, generate, ingest, models, pipeline, release, serve, train
from rankops.cli.common import Parser, add_common
from rankops.errors import RankopsError

COMMANDS = (generate, ingest, features, train, models, pipeline, serve, release, demo, config_cmd)


def build_parser() -> Parser:
    parser = Parser(
        prog="rankops",
        description="rankops: learning-to-rank from click logs to a released ranker.",
        epilog="Run `rankops COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"rankops {__version__}")
    add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RankopsError as err:
        print(f"rankops: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rankops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
