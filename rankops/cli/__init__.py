"""``rankops``: one command line for the local platform.

Each command group lives in its own module with a ``register(subparsers)``
function; this module only assembles them and turns ``RankopsError`` (and the
``OSError``/``UnicodeError`` of a bad path or file) into one line on stderr and exit
status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rankops import __version__
from rankops.cli import (
    config_cmd,
    demo,
    drift,
    features,
    generate,
    ingest,
    models,
    online,
    ope,
    pipeline,
    rehearse,
    release,
    serve,
    simulate,
    train,
)
from rankops.cli.common import Parser, add_common
from rankops.errors import RankopsError

COMMANDS = (
    generate, ingest, features, train, models, pipeline, serve, release, rehearse, ope, drift, online, simulate, demo,
    config_cmd,
)  # fmt: skip


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


def one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def describe_os_error(err: OSError) -> str:
    """``path: reason`` for a failed file or network operation (the path when Python knows it)."""
    if err.filename is None:
        return str(err)
    paths = f"{err.filename} -> {err.filename2}" if err.filename2 is not None else str(err.filename)
    return f"{paths}: {err.strerror or err}"


def error(message: str) -> int:
    from rankops.redaction import redact_text

    print(f"rankops: error: {redact_text(one_line(message))}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RankopsError as err:
        return error(str(err))
    except OSError as err:  # a path that is not a folder, a full disk, no permission, a busy port
        return error(describe_os_error(err))
    except UnicodeError as err:  # a text file that is not UTF-8
        return error(f"cannot decode a text file: {err}")
    except KeyboardInterrupt:
        print("rankops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
